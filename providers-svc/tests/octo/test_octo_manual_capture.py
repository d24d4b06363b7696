"""Manual capture at Octo through the simulator mounted in providers-svc (two-stage, PROTOCOLS.md §3):
a manual payment is prepared with ``auto_capture: false``; the payer pays, the fake notifies
``waiting_for_capture`` and we answer without a decision (the tenant decides), recording the hold as
``provider.payment.authorized``; the tenant's capture is ``/set_accept`` ``capture`` with
``final_amount``, and a release is ``/set_accept`` ``cancel``."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from billing_runtime.bus import MemoryBus
from providers_svc.app import create_app
from providers_svc.db.octo import OctoSimulatorPaymentRow
from providers_svc.settings import Settings
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from .conftest import TENANT, closed_port

pytestmark = pytest.mark.postgres

Gateway = Callable[[], Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def gateway(aiohttp_client: Any, settings: Settings, engine: AsyncEngine, bus: MemoryBus) -> Gateway:
    async def make() -> TestClient[Any, Any]:
        port = closed_port()
        own = settings.model_copy(
            update={"public_gateway_url": f"http://127.0.0.1:{port}", "enabled_providers": ["sandbox", "octo"]}
        )
        client: TestClient[Any, Any] = await aiohttp_client(
            create_app(own, engine=engine, bus=bus, roles=("api",)), server_kwargs={"port": port}
        )
        return client

    return make


async def _fake(engine: AsyncEngine, uuid: str) -> tuple[str, Decimal]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(OctoSimulatorPaymentRow.status, OctoSimulatorPaymentRow.total_sum).where(
                    OctoSimulatorPaymentRow.uuid == uuid
                )
            )
        ).one()
    return str(row[0]), Decimal(row[1])


def _events(rows: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(r["body"]) for r in rows]


async def _held(client: Any, internal_headers: Any, payment_request: Any) -> dict[str, Any]:
    body = payment_request(provider="octo", currency="UZS", amount=150010, capture_method="manual")
    resp = await client.post("/internal/payments/start", json=body, headers=internal_headers(TENANT))
    assert resp.status == 200, await resp.text()
    started: dict[str, Any] = await resp.json()
    started["payment_id"] = body["payment_id"]
    page = "/simulators/octo/pay/" + str(started["provider_reference"])
    assert "Two-stage" in await (await client.get(page)).text()
    assert (await client.post(page, data={"outcome": "pay"}, allow_redirects=False)).status == 303
    return started


async def _capture(client: Any, internal_headers: Any, started: dict[str, Any], amount: int) -> Any:
    return await client.post(
        f"/internal/payments/{started['payment_id']}/capture",
        json={"provider": "octo", "amount": amount, "currency": "UZS"},
        headers=internal_headers(TENANT),
    )


class TestTwoStageForTheTenant:
    async def test_the_hold_waits_for_the_tenant(
        self, gateway: Gateway, internal_headers: Any, payment_request: Any, db_read: Any, engine: AsyncEngine
    ) -> None:
        client = await gateway()
        started = await _held(client, internal_headers, payment_request)
        assert (await _fake(engine, started["provider_reference"]))[0] == "waiting_for_capture"
        [txn] = await db_read("transactions")
        assert (txn["status"], txn["capture_method"]) == ("pending", "manual")
        assert txn["authorized_at"] is not None
        [event] = _events(await db_read("outbox"))
        assert (event["event_type"], event["data"]["amount"]) == ("provider.payment.authorized", 150010)
        assert event["data"]["authorization_expires_at"] is not None

    async def test_a_partial_capture_is_set_accept_with_final_amount(
        self, gateway: Gateway, internal_headers: Any, payment_request: Any, db_read: Any, engine: AsyncEngine
    ) -> None:
        client = await gateway()
        started = await _held(client, internal_headers, payment_request)
        resp = await _capture(client, internal_headers, started, 100000)
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["amount_captured"] == 100000
        assert await _fake(engine, started["provider_reference"]) == ("succeeded", Decimal("1000.00"))
        [txn] = await db_read("transactions")
        assert (txn["status"], txn["captured_amount"]) == ("succeeded", 100000)
        events = _events(await db_read("outbox"))
        assert [e["event_type"] for e in events] == ["provider.payment.authorized", "provider.payment.succeeded"]
        assert events[1]["data"]["amount"] == 100000
        again = await _capture(client, internal_headers, started, 100000)
        assert (again.status, (await again.json())["amount_captured"]) == (200, 100000)
        assert len(await db_read("outbox")) == 2

    async def test_a_release_cancels_the_hold_at_octo(
        self, gateway: Gateway, internal_headers: Any, payment_request: Any, db_read: Any, engine: AsyncEngine
    ) -> None:
        client = await gateway()
        started = await _held(client, internal_headers, payment_request)
        resp = await client.post(f"/internal/payments/{started['payment_id']}/cancel", headers=internal_headers(TENANT))
        assert resp.status == 200, await resp.text()
        assert (await _fake(engine, started["provider_reference"]))[0] == "canceled"
        [txn] = await db_read("transactions")
        assert txn["status"] == "cancelled"
