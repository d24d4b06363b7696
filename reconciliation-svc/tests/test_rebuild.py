"""``reconciliation-svc rebuild``: the projection emptied and refilled, our payments and refunds from
payments-svc's ``GET /internal/events`` and the providers' verdicts from providers-svc's ``GET
/internal/verdicts`` (fakes on loopback serving the documented shapes, checking the tokens), in one
transaction: a failure of either midway leaves the old projection; discrepancies are kept."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from billing_contracts.envelope import EventBase
from billing_contracts.events import (
    PaymentCreatedV1,
    PaymentSucceededV1,
    ProviderDispute,
    ProviderDisputeUpdatedV1,
    ProviderPaymentFailedV1,
    ProviderPaymentSucceededV1,
    ProviderRefundUpdatedV1,
)
from billing_runtime.errors import ProblemError
from billing_runtime.internal_auth import INTERNAL_HEADER, verify_internal
from billing_runtime.testing import truncate_all
from reconciliation_svc.__main__ import main
from reconciliation_svc.db.models import metadata
from reconciliation_svc.services.runs import RunDeps
from sqlalchemy import text

from .runs.conftest import NOON as RUNS_NOON
from .runs.conftest import Seeder
from .runs.test_disputes import import_report, report_row, run_over
from .support import NOW, PAYMENTS_SECRET, PROVIDERS_SECRET, payment_snapshot, refund_snapshot


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


def outcome(ptx: str, payment_id: str, account_id: str | None, **kw: Any) -> dict[str, Any]:
    return {
        "payment_id": payment_id,
        "provider": "payme",
        "provider_transaction_id": ptx,
        "provider_reference": f"ref-{ptx}",
        "amount": 5000,
        "currency": "USD",
        "account_id": account_id,
        **kw,
    }


def provider_refund(status: str, at: datetime, **kw: Any) -> dict[str, Any]:
    return {
        "payment_id": "pay_1",
        "provider": "payme",
        "provider_transaction_id": "ptx_1",
        "refund_id": "rfnd_1",
        "provider_refund_id": "prf_1",
        "amount": 2000,
        "currency": "USD",
        "status": status,
        "provider_updated_at": at,
        "account_id": "pac_1",
        **kw,
    }


def dispute_state(dispute_id: str) -> ProviderDispute:
    return ProviderDispute(
        payment_id="pay_1",
        provider="stripe",
        provider_transaction_id="ptx_1",
        provider_dispute_id=dispute_id,
        status="lost",
        amount=5000,
        currency="USD",
        funds_withdrawn=True,
        provider_created_at=NOW,
        provider_updated_at=NOW,
    )


# What providers-svc holds: pay_1 succeeded through account pac_1, pay_2's attempt failed through pac_2,
# our refund rfnd_1 pending, and a refund Payme made itself (a cancel after perform: no refund id of ours).
VERDICTS: list[EventBase] = [
    ProviderPaymentSucceededV1(tenant_id="ten_a", occurred_at=NOW, data=outcome("ptx_1", "pay_1", "pac_1")),
    ProviderPaymentFailedV1(
        tenant_id="ten_b", occurred_at=NOW, data=outcome("ptx_2", "pay_2", "pac_2", failure_code="declined")
    ),
    ProviderRefundUpdatedV1(tenant_id="ten_a", data=provider_refund("pending", NOW + timedelta(minutes=1))),
    ProviderRefundUpdatedV1(
        tenant_id="ten_a",
        data=provider_refund(
            "succeeded", NOW + timedelta(minutes=2), refund_id=None, provider_refund_id="payme-9", amount=3000
        ),
    ),
]


@pytest.fixture
async def fake_verdicts(aiohttp_server):  # type: ignore[no-untyped-def]
    """providers-svc's ``GET /internal/verdicts`` on loopback: ``next`` is an index of its own."""
    state: dict[str, Any] = {
        "verdicts": [v.model_dump(mode="json") for v in VERDICTS],
        "fail_after": None,
        "requests": [],
    }

    async def verdicts(request: web.Request) -> web.Response:
        try:
            caller = verify_internal(PROVIDERS_SECRET, request.headers.get(INTERNAL_HEADER, ""), audience="providers")
        except ProblemError:
            return web.json_response({"code": "unauthorized"}, status=401)
        assert (caller.service, caller.tenant_id) == ("reconciliation", None)
        after, limit = request.query.get("after"), int(request.query["limit"])
        state["requests"].append(after)
        if state["fail_after"] is not None and after == state["fail_after"]:
            return web.json_response({"code": "database_unavailable"}, status=503)
        start = 0 if after is None else int(after.removeprefix("i:"))
        page = state["verdicts"][start : start + limit]
        more = start + limit < len(state["verdicts"])
        return web.json_response({"data": page, "next": f"i:{start + limit}" if more else None})

    app = web.Application()
    app.router.add_get("/internal/verdicts", verdicts)
    server = await aiohttp_server(app)
    state["url"] = f"http://127.0.0.1:{server.port}"
    return state


@pytest.fixture
def run_rebuild(monkeypatch: pytest.MonkeyPatch, database_url: str, fake_verdicts):  # type: ignore[no-untyped-def]
    def set_env(url: str, providers_url: str) -> None:
        for name, value in {
            "DATABASE_URL": database_url,
            "INTERNAL_SECRET": "i" * 32,
            "PROVIDERS_INTERNAL_SECRET": PROVIDERS_SECRET,
            "PAYMENTS_INTERNAL_SECRET": PAYMENTS_SECRET,
            "PAYMENTS_URL": url,
            "PROVIDERS_URL": providers_url,
            "REBUILD_PAGE_SIZE": "2",
        }.items():
            monkeypatch.setenv(f"RECONCILIATION_{name}", value)

    async def run(url: str, providers_url: str | None = None) -> int:
        set_env(url, providers_url or fake_verdicts["url"])
        # The command runs its own event loop, as from a shell: off this test's loop.
        with pytest.raises(SystemExit) as exited:
            await asyncio.to_thread(main, ["rebuild"])
        return int(exited.value.code or 0)

    return run


class TestRebuild:
    async def test_the_projection_is_refilled_from_the_log(
        self, client, publish, rows, fake_payments, fake_verdicts, run_rebuild, capsys
    ) -> None:
        # What the projection held before: a payment the log no longer has, a verdict providers-svc
        # no longer holds (both gone after the rebuild).
        await publish(PaymentCreatedV1(tenant_id="ten_a", data={"payment": payment_snapshot(id="pay_stale")}))
        await publish(ProviderPaymentSucceededV1(tenant_id="ten_a", data=outcome("ptx_stale", "pay_stale", None)))
        assert await run_rebuild(fake_payments["url"]) == 0
        payments = await rows("SELECT id, tenant_id, status, last_sequence FROM recon_payments ORDER BY id")
        assert [tuple(p) for p in payments] == [("pay_1", "ten_a", "SUCCEEDED", 4), ("pay_2", "ten_b", "CREATED", 1)]
        [refund] = await rows("SELECT id, status, next_check_at FROM recon_refunds")
        assert (refund.id, refund.status, refund.next_check_at) == ("rfnd_1", "PENDING", NOW + timedelta(minutes=5))
        ptxs = await rows("SELECT provider_transaction_id FROM recon_provider_transactions ORDER BY 1")
        assert [p.provider_transaction_id for p in ptxs] == ["ptx_1", "ptx_2"]
        # Paged with `after` = the last id of each page, 2 at a time; the verdicts by their `next`.
        assert fake_payments["requests"] == [None, "evt_0002", "evt_0004", "evt_0006"]
        assert fake_verdicts["requests"] == [None, "i:2"]
        out = capsys.readouterr().out
        assert "7 events read, 5 applied, 2 skipped; 4 provider verdicts applied" in out

    async def test_a_failure_midway_leaves_the_old_projection(
        self, client, publish, rows, fake_payments, run_rebuild, capsys
    ) -> None:
        await publish(PaymentCreatedV1(tenant_id="ten_a", data={"payment": payment_snapshot(id="pay_old")}))
        fake_payments["fail_after"] = "evt_0004"
        assert await run_rebuild(fake_payments["url"]) == 1
        assert [r.id for r in await rows("SELECT id FROM recon_payments")] == ["pay_old"]
        assert "the projection is unchanged" in capsys.readouterr().err

    async def test_the_disputes_are_refilled_from_the_verdicts(
        self, client, publish, rows, fake_payments, fake_verdicts, run_rebuild
    ) -> None:
        """A dispute providers-svc no longer hands out is gone (as a payment the log no longer has); one
        it hands out applies as live."""
        await publish(ProviderDisputeUpdatedV1(tenant_id="ten_a", data=dispute_state("dp_stale")))
        fake_verdicts["verdicts"].append(
            ProviderDisputeUpdatedV1(tenant_id="ten_a", data=dispute_state("dp_handed")).model_dump(mode="json")
        )
        assert await run_rebuild(fake_payments["url"]) == 0
        refilled = await rows("SELECT provider_dispute_id, withdrawn_at FROM recon_disputes ORDER BY 1")
        assert [tuple(d) for d in refilled] == [("dp_handed", NOW)]

    async def test_payments_svc_unreachable_fails_cleanly(self, client, run_rebuild) -> None:
        assert await run_rebuild("http://127.0.0.1:9") == 1

    async def test_an_entry_that_does_not_parse_fails_the_rebuild(
        self, client, rows, fake_payments, run_rebuild
    ) -> None:
        fake_payments["log"] = [entry(1, "payment.created", {"payment": {"id": "pay_1"}})]
        assert await run_rebuild(fake_payments["url"]) == 1


PROJECTION = (
    "recon_payments",
    "recon_refunds",
    "recon_provider_transactions",
    "recon_provider_refunds",
    "recon_disputes",
)


class TestRebuildProviderVerdicts:
    async def test_a_total_loss_is_restored_with_payments_filed_under_their_accounts(
        self, client, clean_db, rows, fake_payments, run_rebuild
    ) -> None:
        async with clean_db.begin() as conn:
            await conn.execute(text(f"TRUNCATE {', '.join(PROJECTION)}"))
        assert await run_rebuild(fake_payments["url"]) == 0
        filed = await rows("SELECT id, provider_account_id FROM recon_payments ORDER BY id")
        assert [tuple(p) for p in filed] == [("pay_1", "pac_1"), ("pay_2", "pac_2")]
        ptxs = await rows(
            "SELECT provider_transaction_id, payment_id, status, account_id, occurred_at, observed_via,"
            " provider_reference FROM recon_provider_transactions ORDER BY 1"
        )
        assert [tuple(p) for p in ptxs] == [
            ("ptx_1", "pay_1", "succeeded", "pac_1", NOW, "callback", "ref-ptx_1"),
            ("ptx_2", "pay_2", "failed", "pac_2", NOW, "callback", "ref-ptx_2"),
        ]
        refunds = await rows(
            "SELECT key, refund_id, status, amount, provider_updated_at FROM recon_provider_refunds ORDER BY key"
        )
        assert [tuple(r) for r in refunds] == [
            ("payme:payme-9", None, "succeeded", 3000, NOW + timedelta(minutes=2)),
            ("rfnd_1", "rfnd_1", "pending", 2000, NOW + timedelta(minutes=1)),
        ]

    async def test_a_failing_providers_source_midway_leaves_the_old_projection(
        self, client, publish, rows, fake_payments, fake_verdicts, run_rebuild, capsys
    ) -> None:
        await publish(PaymentCreatedV1(tenant_id="ten_a", data={"payment": payment_snapshot(id="pay_old")}))
        await publish(ProviderPaymentSucceededV1(tenant_id="ten_a", data=outcome("ptx_old", "pay_old", "pac_old")))
        fake_verdicts["fail_after"] = "i:2"
        assert await run_rebuild(fake_payments["url"]) == 1
        assert fake_verdicts["requests"] == [None, "i:2"]
        assert [tuple(r) for r in await rows("SELECT id, provider_account_id FROM recon_payments")] == [
            ("pay_old", "pac_old")
        ]
        ptxs = await rows("SELECT provider_transaction_id FROM recon_provider_transactions")
        assert [p.provider_transaction_id for p in ptxs] == ["ptx_old"]
        assert await rows("SELECT * FROM recon_provider_refunds") == []
        assert "the projection is unchanged" in capsys.readouterr().err

    async def test_a_verdict_that_does_not_parse_fails_the_rebuild(
        self, client, publish, rows, fake_payments, fake_verdicts, run_rebuild
    ) -> None:
        await publish(PaymentCreatedV1(tenant_id="ten_a", data={"payment": payment_snapshot(id="pay_old")}))
        fake_verdicts["verdicts"].append({"event_type": "provider.payment.succeeded", "data": {"payment_id": "x"}})
        assert await run_rebuild(fake_payments["url"]) == 1
        assert [r.id for r in await rows("SELECT id FROM recon_payments")] == ["pay_old"]

    async def test_a_live_event_after_the_rebuild_still_wins_by_its_ordering(
        self, client, publish, rows, fake_payments, run_rebuild
    ) -> None:
        assert await run_rebuild(fake_payments["url"]) == 0
        # An older pending verdict (delivered late) changes nothing; the provider's later final one wins.
        await publish(ProviderRefundUpdatedV1(tenant_id="ten_a", data=provider_refund("pending", NOW)))
        [refund] = await rows("SELECT status, provider_updated_at FROM recon_provider_refunds WHERE key = 'rfnd_1'")
        assert tuple(refund) == ("pending", NOW + timedelta(minutes=1))
        later = NOW + timedelta(minutes=3)
        await publish(ProviderRefundUpdatedV1(tenant_id="ten_a", data=provider_refund("succeeded", later)))
        [refund] = await rows("SELECT status, provider_updated_at FROM recon_provider_refunds WHERE key = 'rfnd_1'")
        assert tuple(refund) == ("succeeded", later)
        # The transaction's later observation (a status check) replaces the rebuilt copy; an earlier does not.
        await publish(
            ProviderPaymentSucceededV1(
                tenant_id="ten_a",
                occurred_at=NOW - timedelta(seconds=1),
                data=outcome("ptx_1", "pay_1", "pac_1", provider_reference="old-ref"),
            )
        )
        [ptx] = await rows(
            "SELECT provider_reference, observed_via FROM recon_provider_transactions WHERE payment_id = 'pay_1'"
        )
        assert tuple(ptx) == ("ref-ptx_1", "callback")
        await publish(
            ProviderPaymentSucceededV1(
                tenant_id="ten_a",
                occurred_at=NOW + timedelta(seconds=1),
                data=outcome("ptx_1", "pay_1", "pac_1", observed_via="status_check"),
            )
        )
        [ptx] = await rows("SELECT observed_via FROM recon_provider_transactions WHERE payment_id = 'pay_1'")
        assert ptx.observed_via == "status_check"


# A lost and a won dispute of two Stripe payments of account pac_a, on the runs tests' day.
OPENED = RUNS_NOON - timedelta(hours=3)
WITHDRAWN = OPENED + timedelta(minutes=1)


def stripe_payment(payment_id: str, intent: str) -> list[EventBase]:
    snapshot = payment_snapshot(
        id=payment_id, provider="stripe", provider_reference=intent, created_at=OPENED - timedelta(hours=1)
    )
    paid = {**snapshot, "status": "SUCCEEDED", "sequence": 2, "updated_at": OPENED - timedelta(minutes=30)}
    return [
        PaymentCreatedV1(tenant_id="ten_a", data={"payment": snapshot}),
        PaymentSucceededV1(tenant_id="ten_a", data={"payment": paid}),
        ProviderPaymentSucceededV1(
            tenant_id="ten_a",
            occurred_at=OPENED - timedelta(minutes=30),
            data={**outcome(f"ptx_{payment_id}", payment_id, "pac_a", provider_reference=intent), "provider": "stripe"},
        ),
    ]


def stripe_dispute(dispute_id: str, payment_id: str, status: str, withdrawn: bool, at: datetime) -> EventBase:
    return ProviderDisputeUpdatedV1(
        tenant_id="ten_a",
        data=ProviderDispute(
            payment_id=payment_id,
            provider="stripe",
            provider_transaction_id=f"ptx_{payment_id}",
            provider_dispute_id=dispute_id,
            status=status,
            reason="fraudulent",
            amount=5000,
            currency="USD",
            funds_withdrawn=withdrawn,
            provider_created_at=OPENED,
            provider_updated_at=at,
        ),
    )


# Every state Stripe reported, in the order providers-svc received (and hands out) them. The first
# has no funds withdrawn yet: the lost dispute's ``released_at`` is that state's time, which its newest
# state alone would not give; nor would it give either dispute's ``withdrawn_at``.
LOST = [
    stripe_dispute("dp_lost", "pay_lost", "needs_response", False, OPENED),
    stripe_dispute("dp_lost", "pay_lost", "needs_response", True, WITHDRAWN),
    stripe_dispute("dp_lost", "pay_lost", "under_review", True, OPENED + timedelta(hours=1)),
    stripe_dispute("dp_lost", "pay_lost", "lost", True, RUNS_NOON),
]
WON = [
    stripe_dispute("dp_won", "pay_won", "needs_response", False, OPENED),
    stripe_dispute("dp_won", "pay_won", "needs_response", True, WITHDRAWN),
    stripe_dispute("dp_won", "pay_won", "won", False, RUNS_NOON),  # funds_reinstated and closed, one second
    stripe_dispute("dp_won", "pay_won", "won", False, RUNS_NOON),
]
STRIPE_LIVE = [*stripe_payment("pay_lost", "pi_lost"), *stripe_payment("pay_won", "pi_won")]


def log_entries(events: list[EventBase]) -> list[dict[str, Any]]:
    """payments-svc's log of ``events`` (its ``/internal/events`` shape)."""
    return [
        {**entry(n, e.event_type, e.data.model_dump(mode="json")), "created_at": e.occurred_at.isoformat()}
        for n, e in enumerate(events, 1)
    ]


def handed_out(events: list[EventBase]) -> list[dict[str, Any]]:
    """``events`` as providers-svc's verdicts hand them out again: the same, under new envelope ids."""
    return [{k: v for k, v in e.model_dump(mode="json").items() if k != "event_id"} for e in events]


def stripe_report() -> list[str]:
    """Stripe's balance report of the day: both charges, both withdrawals, and no reinstatement of the
    won dispute (its ``dispute_reversal`` line is missing: one discrepancy to find again)."""

    def charge(txn: str, payment_id: str, intent: str) -> str:
        at = (OPENED - timedelta(minutes=30)).strftime("%Y-%m-%d %H:%M:%S")
        return f"{txn},{at},usd,50.00,1.75,48.25,charge,ch_{txn},ch_{txn},{intent},,,{payment_id},\n"

    return [
        charge("txn_c1", "pay_lost", "pi_lost"),
        charge("txn_c2", "pay_won", "pi_won"),
        report_row("txn_d1", WITHDRAWN, "-50.00", "dispute", fee="15.00", dispute="dp_lost", intent="pi_lost"),
        report_row("txn_d2", WITHDRAWN, "-50.00", "dispute", fee="15.00", dispute="dp_won", intent="pi_won"),
    ]


# Every column of recon_disputes but ``updated_at`` (our clock at the write).
DISPUTES = (
    "SELECT provider, provider_dispute_id, payment_id, provider_transaction_id, tenant_id, livemode, status, amount,"
    " currency, withdrawn_at, released_at, provider_updated_at FROM recon_disputes ORDER BY provider_dispute_id"
)


class TestRebuildDisputes:
    async def test_a_total_loss_restores_the_disputes_and_a_run_finds_the_same(
        self, client, publish, rows, clean_db, fake_payments, fake_verdicts, run_rebuild
    ) -> None:
        seed = Seeder(clean_db)
        run_deps = RunDeps(engine=clean_db, statements=None, lease=timedelta(seconds=60), margin=timedelta(hours=1))
        for event in STRIPE_LIVE:
            await publish(event)
        # Live, the states arrive in any order: the lost dispute's backwards, the won one's in order.
        for event in [*reversed(LOST), *WON]:
            await publish(event)
        before = [tuple(d) for d in await rows(DISPUTES)]
        assert [(d[1], d[6], d[9], d[10]) for d in before] == [
            ("dp_lost", "lost", WITHDRAWN, OPENED),
            ("dp_won", "won", WITHDRAWN, RUNS_NOON),
        ]
        await run_over(seed, run_deps, await import_report(clean_db, *stripe_report()))
        found = [(d.kind, d.dedupe_key, d.payment_id) for d in await seed.discrepancies()]
        assert found == [("missing_at_provider", "missing_at_provider:stripe:dispute:dp_won:reinstated", "pay_won")]

        # Everything lost (the statements and discrepancies too), then rebuilt from the two sources.
        await truncate_all(clean_db, metadata)
        fake_payments["log"] = log_entries([e for e in STRIPE_LIVE if e.source == "payments"])
        providers = [e for e in STRIPE_LIVE if e.source == "providers"]
        fake_verdicts["verdicts"] = handed_out([*providers, *LOST, *WON])
        assert await run_rebuild(fake_payments["url"]) == 0
        after = [tuple(d) for d in await rows(DISPUTES)]
        assert after == before
        await run_over(seed, run_deps, await import_report(clean_db, *stripe_report()))
        assert [(d.kind, d.dedupe_key, d.payment_id) for d in await seed.discrepancies()] == found
