"""Each replica's copies of the tenants' access rows (``gateway.tenant_access``): kept between requests,
dropped at once by the change that announces itself, never trusted while changes cannot arrive, never
older than ``tenant_cache_seconds``, and never stored by a read that an announcement overtook."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from gateway.db.models import Tenant
from gateway.keys import access_cache_key
from gateway.tenant_access import CHANNEL, TenantAccessCache
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from .support import FakeUpstream, Gateway, admin_headers, bearer

pytestmark = pytest.mark.postgres


async def _rename(engine: AsyncEngine, tenant_id: str, name: str, *, announce: bool) -> None:
    """A change made behind the gateway's back, announced (as the gateway's own changes are) or not."""
    async with engine.begin() as conn:
        await conn.execute(update(Tenant).where(Tenant.id == tenant_id).values(display_name=name))
        if announce:
            await conn.execute(select(func.pg_notify(CHANNEL, tenant_id)))


async def _name_seen(gateway: Gateway, token: str, payments: FakeUpstream) -> str:
    assert (await gateway.client.get("/v1/payments", headers=bearer(token))).status == 200
    return str(payments.last.caller("payments").tenant_name)


class TestCopies:
    async def test_a_row_is_read_once_then_kept(self, make_gateway: Callable[..., Awaitable[Gateway]]) -> None:
        gateway = await make_gateway(tenant_cache_seconds=60)
        cache = gateway.client.app[access_cache_key]
        _, token = await gateway.tenant_with_token()
        for _ in range(5):
            assert (await gateway.client.get("/v1/payments", headers=bearer(token))).status == 200
        assert cache.reads == 1

    async def test_an_unannounced_change_shows_once_the_copy_is_too_old(
        self, make_gateway: Callable[..., Awaitable[Gateway]], payments: FakeUpstream, engine: AsyncEngine
    ) -> None:
        gateway = await make_gateway(tenant_cache_seconds=0.3)
        tenant, token = await gateway.tenant_with_token()
        assert await _name_seen(gateway, token, payments) == "Shop One"
        await _rename(engine, tenant["id"], "Renamed", announce=False)
        assert await _name_seen(gateway, token, payments) == "Shop One"  # the copy, still young
        await asyncio.sleep(0.35)
        assert await _name_seen(gateway, token, payments) == "Renamed"

    async def test_an_announced_change_drops_the_copies_of_every_replica(
        self, make_gateway: Callable[..., Awaitable[Gateway]], payments: FakeUpstream, engine: AsyncEngine
    ) -> None:
        replicas = [await make_gateway(tenant_cache_seconds=60) for _ in range(2)]
        tenant, token = await replicas[0].tenant_with_token()
        for replica in replicas:
            assert await _name_seen(replica, token, payments) == "Shop One"
        await _rename(engine, tenant["id"], "Renamed", announce=True)
        for replica in replicas:
            deadline = time.monotonic() + 10  # NOTIFY and LISTEN on a loaded machine; the copy is kept 60 s
            while await _name_seen(replica, token, payments) != "Renamed":
                assert time.monotonic() < deadline, "an announced change did not reach a replica within 10 s"
                await asyncio.sleep(0.005)

    async def test_a_rotation_elsewhere_retires_the_old_token_here(
        self, make_gateway: Callable[..., Awaitable[Gateway]]
    ) -> None:
        first = await make_gateway(tenant_cache_seconds=60, secret_grace_period=0)
        second = await make_gateway(tenant_cache_seconds=60)
        tenant, token = await first.tenant_with_token()
        assert (await second.client.get("/v1/payments", headers=bearer(token))).status == 200
        resp = await first.client.post(f"/admin/tenants/{tenant['id']}/rotate-secret", headers=admin_headers())
        assert resp.status == 200
        assert (await first.client.get("/v1/payments", headers=bearer(token))).status == 401  # here at once
        deadline = time.monotonic() + 10  # NOTIFY and LISTEN on a loaded machine; the copy is kept 60 s
        while (await second.client.get("/v1/payments", headers=bearer(token))).status == 200:
            assert time.monotonic() < deadline, "the other replica still takes a retired token after 10 s"
            await asyncio.sleep(0.005)


class TestWhenChangesCannotArrive:
    async def test_without_the_listener_every_request_reads(
        self, make_gateway: Callable[..., Awaitable[Gateway]]
    ) -> None:
        gateway = await make_gateway(tenant_cache_seconds=60)
        cache = gateway.client.app[access_cache_key]
        _, token = await gateway.tenant_with_token()
        cache.listening = lambda: False  # as while the LISTEN connection is down
        for _ in range(3):
            assert (await gateway.client.get("/v1/payments", headers=bearer(token))).status == 200
        assert cache.reads == 3

    async def test_a_read_overtaken_by_an_announcement_is_not_kept(
        self, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        cache = TenantAccessCache(engine, max_age=60, listening=lambda: True)
        row = {"display_name": "Old", "livemode": False, "disabled": False, "secret_generation": 1}

        async def read_then_announced(_engine: AsyncEngine, _tenant_id: str) -> dict[str, object]:
            cache.invalidate()  # the change's notification arrives while the old row is on its way
            return row

        monkeypatch.setattr("gateway.tenant_access.read_access_row", read_then_announced)
        assert await cache.row("ten_1") == row
        assert await cache.row("ten_1") == row
        assert cache.reads == 2  # the first answer was never kept

    async def test_the_listener_is_up_in_a_running_gateway(self, gateway: Gateway) -> None:
        assert gateway.client.app[access_cache_key].listening()
