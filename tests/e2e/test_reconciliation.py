"""reconciliation-svc runs in both modes (embedded: its database on the embedded server, its api and
worker in the process; distributed: its own process on RabbitMQ) and its admin API is reached through
the gateway with the admin token only."""

from __future__ import annotations

import asyncio
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
import pytest
from billing_runtime.testing import PG_DSN

from .test_refunds import pay_at_sandbox, refund, settle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def _projected(platform: Any, payments: dict[str, str], refunds: list[str], timeout: float = 30) -> None:
    """Wait until reconciliation-svc's projection (built from events) holds each payment in its status
    and each refund SUCCEEDED: a run compares the provider's statement with it."""
    conn = await asyncpg.connect(PG_DSN.rsplit("/", 1)[0] + "/" + platform.databases["reconciliation"])
    try:
        deadline = time.monotonic() + timeout
        while True:
            held = dict(await conn.fetch("SELECT id, status FROM recon_payments WHERE id = ANY($1)", list(payments)))
            made = await conn.fetchval(
                "SELECT count(*) FROM recon_refunds WHERE id = ANY($1) AND status = 'SUCCEEDED'", refunds
            )
            if (held == payments and made == len(refunds)) or time.monotonic() > deadline:
                assert (held, made) == (payments, len(refunds))
                return
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def _finished_run(http: aiohttp.ClientSession, platform: Any, body: dict[str, str], timeout: float = 60) -> dict:
    admin = {"Authorization": f"Bearer {platform.admin_token}"}
    async with http.post(f"{platform.gateway_url}/admin/reconciliation/runs", json=body, headers=admin) as r:
        assert r.status == 202, await r.text()
        run = await r.json()
    deadline = time.monotonic() + timeout
    while run["state"] not in ("succeeded", "failed") and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        async with http.get(f"{platform.gateway_url}/admin/reconciliation/runs/{run['id']}", headers=admin) as r:
            run = await r.json()
    return dict(run)


async def _discrepancies(http: aiohttp.ClientSession, platform: Any, provider: str) -> list[dict]:
    admin = {"Authorization": f"Bearer {platform.admin_token}"}
    found: list[dict] = []
    query = {"provider": provider, "limit": "100"}
    while True:
        url = f"{platform.gateway_url}/admin/reconciliation/discrepancies"
        async with http.get(url, params=query, headers=admin) as r:
            assert r.status == 200, await r.text()
            page = await r.json()
        found.extend(page["data"])
        if not page["has_more"]:
            return found
        query["starting_after"] = page["data"][-1]["id"]


class TestReconciliationRuns:
    async def test_the_service_runs_and_its_admin_api_is_served_through_the_gateway(
        self, platform, new_tenant, http
    ) -> None:
        async with http.get(f"http://127.0.0.1:{platform.ports['reconciliation']}/readyz") as r:
            assert r.status == 200, await r.text()
        admin = {"Authorization": f"Bearer {platform.admin_token}"}
        async with http.get(f"{platform.gateway_url}/admin/reconciliation/discrepancies", headers=admin) as r:
            assert r.status == 200, await r.text()
            body = await r.json()
        assert (body["object"], body["data"], body["has_more"]) == ("list", [], False)
        async with http.post(f"{platform.gateway_url}/admin/reconciliation/janitor/run", headers=admin) as r:
            assert r.status == 200, await r.text()
            assert (await r.json())["object"] == "janitor_run"
        async with http.get(f"{platform.gateway_url}/admin/reconciliation/discrepancies/dsc_nope", headers=admin) as r:
            assert r.status == 404
            assert (await r.json())["code"] == "not_found"
        # Not for tenants, nor for anyone without the admin token; and never reachable directly.
        tenant = await new_tenant()
        async with http.get(f"{platform.gateway_url}/admin/reconciliation/discrepancies", headers=tenant.auth) as r:
            assert r.status == 403
        async with http.get(f"{platform.gateway_url}/admin/reconciliation/discrepancies") as r:
            assert r.status == 401
        direct = f"http://127.0.0.1:{platform.ports['reconciliation']}/admin/reconciliation/discrepancies"
        async with http.get(direct, headers=admin) as r:
            assert r.status == 401

    @pytest.mark.parametrize("platform", ["distributed"], indirect=True)
    async def test_paid_and_refunded_sandbox_payments_reconcile_with_nothing_found(
        self, platform, new_tenant, http
    ) -> None:
        # The sandbox bank's statement, as providers-svc makes it, against the projection reconciliation
        # built from the events: a kept payment, one refunded in part and one in full agree, refunds too.
        tenant = await new_tenant()
        kept = await pay_at_sandbox(http, platform, tenant, amount=5000)
        partly = await pay_at_sandbox(http, platform, tenant, amount=5000)
        wholly = await pay_at_sandbox(http, platform, tenant, amount=3000)
        refunds = []
        for payment, amount in ((partly, 1000), (wholly, 3000)):
            status, made = await refund(http, platform, tenant.auth, payment["id"], secrets.token_hex(8), amount=amount)
            assert status == 201, made
            assert (await settle(http, platform, tenant.auth, made["id"]))["status"] == "SUCCEEDED"
            refunds.append(made["id"])
        statuses = {kept["id"]: "SUCCEEDED", partly["id"]: "PARTIALLY_REFUNDED", wholly["id"]: "REFUNDED"}
        await _projected(platform, statuses, refunds)

        today = datetime.now(UTC).date().isoformat()
        run = await _finished_run(http, platform, {"account_id": "sandbox", "from": today, "to": today})
        assert run["state"] == "succeeded", run
        assert run["progress"]["lines_read"] >= 5  # three payments and two refunds of ours at least
        ours = set(statuses) | set(refunds)
        named = [d for d in await _discrepancies(http, platform, "sandbox") if {d["payment_id"], d["refund_id"]} & ours]
        assert named == []
