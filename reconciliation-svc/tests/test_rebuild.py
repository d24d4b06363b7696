"""``reconciliation-svc rebuild``: the projection of payments and refunds emptied and refilled from
payments-svc's ``GET /internal/events`` (a fake on loopback serving the documented shape, checking the
token), in one transaction: a failure midway leaves the old projection; providers' verdicts and
discrepancies are kept."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from billing_contracts.events import PaymentCreatedV1, ProviderPaymentSucceededV1
from billing_runtime.errors import ProblemError
from billing_runtime.internal_auth import INTERNAL_HEADER, verify_internal
from reconciliation_svc.__main__ import main

from .support import NOW, PAYMENTS_SECRET, payment_snapshot, refund_snapshot


def entry(n: int, type_: str, data: dict[str, Any], tenant: str = "ten_a") -> dict[str, Any]:
    return {
        "id": f"evt_{n:04d}",
        "object": "event",
        "type": type_,
        "tenant_id": tenant,
        "livemode": False,
        "created_at": (NOW + timedelta(seconds=n)).isoformat().replace("+00:00", "Z"),
        "data": data,
    }


def snapshot_json(**kw: Any) -> dict[str, Any]:
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in kw.items()}


LOG = [
    entry(1, "payment.created", {"payment": snapshot_json(**payment_snapshot())}),
    entry(2, "payment.pending", {"payment": snapshot_json(**payment_snapshot(status="PROVIDER_PENDING", sequence=2))}),
    entry(3, "payment.succeeded", {"payment": snapshot_json(**payment_snapshot(status="SUCCEEDED", sequence=3))}),
    entry(
        4,
        "refund.created",
        {
            "refund": snapshot_json(**refund_snapshot()),
            "payment": snapshot_json(**payment_snapshot(status="SUCCEEDED", sequence=4)),
        },
    ),
    entry(5, "payment.created", {"payment": snapshot_json(**payment_snapshot(id="pay_2"))}, tenant="ten_b"),
    # Types the projection does not take, and one this version does not know: skipped.
    entry(6, "endpoint.disabled", {"endpoint": {"id": "we_1", "url": "https://x", "reason": "gone"}}),
    entry(7, "invoice.paid", {"invoice": {}}),
]


@pytest.fixture
async def fake_payments(aiohttp_server):  # type: ignore[no-untyped-def]
    state: dict[str, Any] = {"log": list(LOG), "fail_after": None, "requests": []}

    async def events(request: web.Request) -> web.Response:
        try:
            caller = verify_internal(PAYMENTS_SECRET, request.headers.get(INTERNAL_HEADER, ""), audience="payments")
        except ProblemError:
            return web.json_response({"code": "unauthorized"}, status=401)
        assert (caller.service, caller.tenant_id) == ("reconciliation", None)
        after, limit = request.query.get("after"), int(request.query["limit"])
        state["requests"].append(after)
        if state["fail_after"] is not None and after == state["fail_after"]:
            return web.json_response({"code": "database_unavailable"}, status=503)
        log = state["log"]
        start = 0 if after is None else next(i for i, e in enumerate(log) if e["id"] == after) + 1
        page = log[start : start + limit]
        return web.json_response({"data": page, "has_more": start + limit < len(log)})

    app = web.Application()
    app.router.add_get("/internal/events", events)
    server = await aiohttp_server(app)
    state["url"] = f"http://127.0.0.1:{server.port}"
    return state


@pytest.fixture
def run_rebuild(monkeypatch: pytest.MonkeyPatch, database_url: str):  # type: ignore[no-untyped-def]
    def set_env(url: str) -> None:
        for name, value in {
            "DATABASE_URL": database_url,
            "INTERNAL_SECRET": "i" * 32,
            "PROVIDERS_INTERNAL_SECRET": "v" * 32,
            "PAYMENTS_INTERNAL_SECRET": PAYMENTS_SECRET,
            "PAYMENTS_URL": url,
            "REBUILD_PAGE_SIZE": "2",
        }.items():
            monkeypatch.setenv(f"RECONCILIATION_{name}", value)

    async def run(url: str) -> int:
        set_env(url)
        # The command runs its own event loop, as from a shell: off this test's loop.
        with pytest.raises(SystemExit) as exited:
            await asyncio.to_thread(main, ["rebuild"])
        return int(exited.value.code or 0)

    return run


class TestRebuild:
    async def test_the_projection_is_refilled_from_the_log(
        self, client, publish, rows, fake_payments, run_rebuild, capsys
    ) -> None:
        # What the projection held before: a payment the log no longer has (gone), a provider verdict.
        await publish(PaymentCreatedV1(tenant_id="ten_a", data={"payment": payment_snapshot(id="pay_stale")}))
        verdict = {
            "payment_id": "pay_1",
            "provider": "click",
            "provider_transaction_id": "ptx_1",
            "amount": 5000,
            "currency": "USD",
        }
        await publish(ProviderPaymentSucceededV1(tenant_id="ten_a", data=verdict))
        assert await run_rebuild(fake_payments["url"]) == 0
        payments = await rows("SELECT id, tenant_id, status, last_sequence FROM recon_payments ORDER BY id")
        assert [tuple(p) for p in payments] == [("pay_1", "ten_a", "SUCCEEDED", 4), ("pay_2", "ten_b", "CREATED", 1)]
        [refund] = await rows("SELECT id, status, next_check_at FROM recon_refunds")
        assert (refund.id, refund.status, refund.next_check_at) == ("rfnd_1", "PENDING", NOW + timedelta(minutes=5))
        assert len(await rows("SELECT * FROM recon_provider_transactions")) == 1
        # Paged with `after` = the last id of each page, 2 at a time.
        assert fake_payments["requests"] == [None, "evt_0002", "evt_0004", "evt_0006"]
        assert "7 events read, 5 applied, 2 skipped" in capsys.readouterr().out

    async def test_a_failure_midway_leaves_the_old_projection(
        self, client, publish, rows, fake_payments, run_rebuild, capsys
    ) -> None:
        await publish(PaymentCreatedV1(tenant_id="ten_a", data={"payment": payment_snapshot(id="pay_old")}))
        fake_payments["fail_after"] = "evt_0004"
        assert await run_rebuild(fake_payments["url"]) == 1
        assert [r.id for r in await rows("SELECT id FROM recon_payments")] == ["pay_old"]
        assert "the projection is unchanged" in capsys.readouterr().err

    async def test_payments_svc_unreachable_fails_cleanly(self, client, run_rebuild) -> None:
        assert await run_rebuild("http://127.0.0.1:9") == 1

    async def test_an_entry_that_does_not_parse_fails_the_rebuild(
        self, client, rows, fake_payments, run_rebuild
    ) -> None:
        fake_payments["log"] = [entry(1, "payment.created", {"payment": {"id": "pay_1"}})]
        assert await run_rebuild(fake_payments["url"]) == 1
