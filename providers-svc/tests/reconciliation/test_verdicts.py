"""``GET /internal/verdicts``: the verdicts providers-svc holds, each as the contract event that
published it (what ``reconciliation-svc rebuild`` refills its providers' side from), walked a page at
a time by a cursor that sees every verdict once, rows written between pages included; reconciliation's
token only (docs/INTERNAL.md "Reconciliation")."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from billing_contracts.events import (
    ProviderDisputeUpdatedV1,
    ProviderPaymentSucceededV1,
    ProviderRefundUpdatedV1,
    parse_event,
)
from billing_runtime.ids import new_id
from providers_svc.db.models import ProviderEventRow, ProviderTransactionRow
from providers_svc.db.payme import PaymeReversalRow
from providers_svc.db.refunds import ProviderRefundRow
from providers_svc.db.stripe import StripeIntentRow
from providers_svc.db.stripe_objects import StripeObjectRow
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from .conftest import outcome_events, reconciliation_headers

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
TENANT = "ten_aaaaaaaaaaaaaaaa"


async def _page(client: Any, after: str | None = None, limit: int = 100) -> dict[str, Any]:
    query = f"?limit={limit}" + (f"&after={after}" if after else "")
    response = await client.get("/internal/verdicts" + query, headers=reconciliation_headers())
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def _walk(client: Any, limit: int, between: Callable[[int], Awaitable[None]] | None = None) -> list[Any]:
    events: list[Any] = []
    after, pages = None, 0
    while True:
        body = await _page(client, after, limit)
        assert len(body["data"]) <= limit
        events.extend(parse_event(json.dumps(item)) for item in body["data"])
        after = body["next"]
        if after is None:
            return events
        pages += 1
        if between is not None:
            await between(pages)


async def _settle(client: Any, start_payment: Any, sandbox_callback: Any, *, failed: bool = False) -> str:
    payment = await start_payment(client)
    ptx = payment["provider_transaction_id"]
    callback = (
        sandbox_callback(ptx, type_="payment.failed", failure_code="card_declined") if failed else sandbox_callback(ptx)
    )
    response = await client.post("/billing/sandbox", data=callback.body, headers=callback.headers)
    assert response.status == 200, await response.text()
    return str(ptx)


def _txn(provider: str, **kw: Any) -> dict[str, Any]:
    return {
        "id": new_id("ptx"),
        "tenant_id": TENANT,
        "payment_id": new_id("pay"),
        "provider": provider,
        "amount": 5000,
        "currency": "USD",
        "livemode": False,
        "status": "succeeded",
        "account_id": "pac_acct1",
        "provider_reference": "ref-1",
        "expires_at": T0 + timedelta(hours=1),
        "created_at": T0,
        "updated_at": T0,
        **kw,
    }


def _refund(txn: dict[str, Any], status: str, published: str | None, **kw: Any) -> dict[str, Any]:
    return {
        "id": new_id("rfnd"),
        "tenant_id": TENANT,
        "livemode": False,
        "payment_id": txn["payment_id"],
        "provider": txn["provider"],
        "provider_transaction_id": txn["id"],
        "account_id": txn["account_id"],
        "amount": 1000,
        "currency": "USD",
        "status": status,
        "published_status": published,
        "failure_code": None,
        "failure_message": None,
        "provider_refund_id": "sbref_1" if status != "requested" else None,
        "provider_updated_at": T0 + timedelta(minutes=5) if status != "requested" else None,
        "created_at": T0,
        "updated_at": T0 + timedelta(minutes=5),
        **kw,
    }


def _stripe_refund(account: str, stripe_id: str, intent: str, status: str, **meta: str) -> dict[str, Any]:
    return {
        "account_id": account,
        "object": "refund",
        "stripe_id": stripe_id,
        "livemode": False,
        "tenant_id": TENANT,
        "deleted": False,
        "created": T0,
        "status": status,
        "amount": 700,
        "currency": "usd",
        "object_metadata": meta,
        "data": {"id": stripe_id, "object": "refund", "status": status, "payment_intent": intent, "metadata": meta},
        "version_time": T0 + timedelta(minutes=7),
        "version_rank": 1,
        "version_progress": 0,
        "event_id": "evt_stripe_1",
        "event_type": "refund.updated",
        "sequence": 1,
        "updated_at": T0 + timedelta(minutes=8),
    }


def _stripe_event(
    account: str, type_: str, dispute: dict[str, Any], at: datetime, result: str, txn: dict[str, Any] | None
) -> dict[str, Any]:
    """The inbox row of a Stripe dispute event as the webhook leaves it (``result`` and, for one of our
    payments, its transaction): ``external_id`` is ``<our account>/<Stripe event id>``."""
    event_id = f"evt_{new_id('x')}"
    body = {
        "id": event_id,
        "object": "event",
        "type": type_,
        "created": int(at.timestamp()),
        "livemode": False,
        "data": {"object": dispute},
    }
    return {
        "id": new_id("pev"),
        "provider": "stripe",
        "external_id": f"{account}/{event_id}",
        "event_type": type_,
        "transaction_id": txn["id"] if txn is not None else None,
        "payload": json.dumps(body),
        "result": result,
        "received_at": at + timedelta(seconds=2),
        "deliveries": [f"{int(at.timestamp())}:{account}"],
    }


def _in_order(*rows: dict[str, Any]) -> list[dict[str, Any]]:
    """``rows`` with their ids in the order given (ids made within one millisecond are in no order)."""
    ids = sorted(row["id"] for row in rows)
    return [{**row, "id": row_id} for row, row_id in zip(rows, ids, strict=True)]


def _dispute(dispute_id: str, intent: str, status: str, **kw: Any) -> dict[str, Any]:
    return {
        "id": dispute_id,
        "object": "dispute",
        "amount": 5000,
        "currency": "usd",
        "status": status,
        "reason": "fraudulent",
        "payment_intent": intent,
        "created": int(T0.timestamp()),
        "evidence_details": {"due_by": int((T0 + timedelta(days=7)).timestamp())},
        "balance_transactions": [],
        **kw,
    }


async def _insert(engine: AsyncEngine, model: Any, *rows: dict[str, Any]) -> None:
    async with engine.begin() as conn:
        for row in rows:
            await conn.execute(insert(model).values(**row))


class TestWhoMayRead:
    async def test_reconciliation_reads_them(self, make_client: Any) -> None:
        client = await make_client()
        assert await _page(client) == {"data": [], "next": None}

    async def test_no_token_or_a_token_naming_a_tenant_is_refused(self, make_client: Any) -> None:
        client = await make_client()
        assert (await client.get("/internal/verdicts", headers=reconciliation_headers())).status == 200
        assert (await client.get("/internal/verdicts")).status == 401
        response = await client.get("/internal/verdicts", headers=reconciliation_headers(tenant_id=TENANT))
        assert response.status == 401

    @pytest.mark.parametrize("issuer", ["payments", "gateway"])
    async def test_other_services_are_refused(self, make_client: Any, issuer: str) -> None:
        client = await make_client()
        for tenant_id in (None, TENANT):
            response = await client.get(
                "/internal/verdicts", headers=reconciliation_headers(issuer=issuer, tenant_id=tenant_id)
            )
            assert response.status == 403, (issuer, tenant_id)
            assert (await response.json())["code"] == "forbidden"

    @pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=x", "after=nowhere:ptx_1", "after=payments"])
    async def test_bad_queries_are_422(self, make_client: Any, query: str) -> None:
        client = await make_client()
        response = await client.get(f"/internal/verdicts?{query}", headers=reconciliation_headers())
        assert response.status == 422
        assert (await response.json())["code"] == "validation_error"


class TestTransactionVerdicts:
    async def test_each_final_outcome_is_the_event_that_published_it(
        self, make_client: Any, start_payment: Any, sandbox_callback: Any, db_read: Any
    ) -> None:
        client = await make_client()
        await _settle(client, start_payment, sandbox_callback)
        await _settle(client, start_payment, sandbox_callback, failed=True)
        # Healed by reconciliation's sync: observed_via "status_check".
        lost = await start_payment(client)
        await client.post(
            f"/sandbox/pay/{lost['provider_transaction_id']}", data={"outcome": "succeed_lost"}, allow_redirects=False
        )
        response = await client.post(f"/internal/payments/{lost['payment_id']}/sync", headers=reconciliation_headers())
        assert response.status == 200
        await start_payment(client)  # still pending: no verdict
        published = {e["data"]["provider_transaction_id"]: e for e in await outcome_events(db_read)}
        walked = await _walk(client, limit=100)
        assert len(walked) == len(published) == 3
        for event in walked:
            original = published[event.data.provider_transaction_id]
            assert event.event_type == original["event_type"]
            assert event.data.model_dump(mode="json") == original["data"]
            assert (event.tenant_id, event.livemode) == (original["tenant_id"], original["livemode"])
            # Never after the original: the original, delivered again, still applies over it.
            assert event.occurred_at <= datetime.fromisoformat(original["occurred_at"])
        assert {e.data.observed_via for e in walked} == {"callback", "status_check"}

    async def test_a_manual_capture_carries_what_it_took(self, make_client: Any, engine: AsyncEngine) -> None:
        client = await make_client()
        row = _txn("stripe", capture_method="manual", captured_amount=3000)
        await _insert(engine, ProviderTransactionRow, row)
        (event,) = await _walk(client, limit=10)
        assert isinstance(event, ProviderPaymentSucceededV1)
        assert (event.data.amount, event.data.account_id, event.occurred_at) == (3000, "pac_acct1", T0)


class TestRefundVerdicts:
    async def test_ours_payme_and_stripe_started_ones(self, make_client: Any, engine: AsyncEngine) -> None:
        client = await make_client()
        sandbox = _txn("sandbox", account_id=None)
        payme = _txn("payme")
        stripe = _txn("stripe", account_id="pac_stripe1")
        await _insert(engine, ProviderTransactionRow, sandbox, payme, stripe)
        ours = [
            _refund(sandbox, "pending", "pending"),
            _refund(sandbox, "failed", "failed", failure_code="refund_failed", failure_message="no"),
            _refund(stripe, "succeeded", "succeeded", provider_refund_id="re_ours"),
        ]
        # Not verdicts: never answered, and a verdict not yet published.
        unanswered = [_refund(sandbox, "requested", None), _refund(sandbox, "succeeded", "pending")]
        await _insert(engine, ProviderRefundRow, *ours, *unanswered)
        cancel_ms = int((T0 + timedelta(minutes=9)).timestamp() * 1000)
        await _insert(
            engine,
            PaymeReversalRow,
            {
                "id": new_id("pmr"),
                "payme_transaction_id": "pmt_1",
                "payme_id": "payme-abc",
                "account_id": "pac_acct1",
                "provider_transaction_id": payme["id"],
                "tenant_id": TENANT,
                "payment_id": payme["payment_id"],
                "livemode": False,
                "amount": 5000,
                "currency": "USD",
                "reason": 5,
                "cancel_time": cancel_ms,
                "refund_id": "rfnd_made_later",
                "created_at": T0 + timedelta(minutes=9),
            },
        )
        await _insert(
            engine,
            StripeIntentRow,
            {
                "transaction_id": stripe["id"],
                "payment_intent_id": "pi_1",
                "status": "succeeded",
                "status_at": T0,
                "updated_at": T0,
            },
        )
        await _insert(
            engine,
            StripeObjectRow,
            _stripe_refund("pac_stripe1", "re_dashboard", "pi_1", "succeeded"),
            # Ours (its metadata names our refund): published from provider_refunds, not twice.
            _stripe_refund("pac_stripe1", "re_ours", "pi_1", "succeeded", refund_id=ours[2]["id"]),
            # Another payment's (not ours at all): no transaction of ours.
            _stripe_refund("pac_stripe1", "re_foreign", "pi_other", "succeeded"),
        )
        walked = [e for e in await _walk(client, limit=2) if isinstance(e, ProviderRefundUpdatedV1)]
        by_key = {e.data.refund_id or f"{e.data.provider}:{e.data.provider_refund_id}": e.data for e in walked}
        assert set(by_key) == {ours[0]["id"], ours[1]["id"], ours[2]["id"], "payme:payme-abc", "stripe:re_dashboard"}
        failed = by_key[ours[1]["id"]]
        assert (failed.status, failed.failure_code, failed.provider_updated_at) == (
            "failed",
            "refund_failed",
            T0 + timedelta(minutes=5),
        )
        assert by_key[ours[0]["id"]].status == "pending"
        reversal = by_key["payme:payme-abc"]
        # As Payme's Cancel published it: no refund id of ours, whatever the row learned since.
        assert (reversal.refund_id, reversal.amount, reversal.status, reversal.observed_via) == (
            None,
            5000,
            "succeeded",
            "callback",
        )
        assert (reversal.provider_updated_at, reversal.account_id) == (T0 + timedelta(minutes=9), "pac_acct1")
        dashboard = by_key["stripe:re_dashboard"]
        assert (dashboard.payment_id, dashboard.provider_transaction_id, dashboard.amount, dashboard.currency) == (
            stripe["payment_id"],
            stripe["id"],
            700,
            "USD",
        )
        assert (dashboard.provider_updated_at, dashboard.account_id) == (T0 + timedelta(minutes=7), "pac_stripe1")


class TestPaging:
    async def test_every_verdict_once_with_rows_written_between_pages(
        self, make_client: Any, engine: AsyncEngine, start_payment: Any, sandbox_callback: Any
    ) -> None:
        client = await make_client()
        before = [await _settle(client, start_payment, sandbox_callback) for _ in range(5)]
        written: list[str] = []

        async def meanwhile(page: int) -> None:
            # A new verdict (lands after the cursor), and a verdict already walked that changes (its
            # event reaches reconciliation on its own: it is not walked again).
            written.append(await _settle(client, start_payment, sandbox_callback))
            if page == 1:
                async with engine.begin() as conn:
                    await conn.execute(
                        update(ProviderTransactionRow)
                        .where(ProviderTransactionRow.id == before[0])
                        .values(updated_at=datetime.now(UTC))
                    )

        walked = await _walk(client, limit=2, between=meanwhile)
        ids = [e.data.provider_transaction_id for e in walked]
        assert sorted(ids) == sorted(before + written)
        assert len(set(ids)) == len(ids)
        assert ids == sorted(ids)


class TestDisputeVerdicts:
    """Every state of a dispute that was published, as the ``provider.dispute.updated`` it was: the
    earliest withdrawal and the latest release are among them (what reconciliation keeps of the
    money a dispute moved), which the newest state alone does not give."""

    async def test_every_published_state_once_in_the_order_received(
        self, make_client: Any, engine: AsyncEngine
    ) -> None:
        client = await make_client()
        lost = _txn("stripe", account_id="pac_stripe1", provider_reference="pi_lost")
        won = _txn("stripe", account_id="pac_stripe2", provider_reference="pi_won", tenant_id="ten_bbbbbbbbbbbbbbbb")
        await _insert(engine, ProviderTransactionRow, lost, won)
        withdrawn = [{"amount": -5000}]
        rows = _in_order(
            _stripe_event(
                "pac_stripe1",
                "charge.dispute.created",
                _dispute("dp_lost", "pi_lost", "needs_response"),
                T0,
                "dispute",
                lost,
            ),
            _stripe_event(
                "pac_stripe2",
                "charge.dispute.created",
                _dispute("dp_won", "pi_won", "needs_response"),
                T0 + timedelta(minutes=1),
                "dispute",
                won,
            ),
            _stripe_event(
                "pac_stripe1",
                "charge.dispute.funds_withdrawn",
                _dispute("dp_lost", "pi_lost", "needs_response", balance_transactions=withdrawn),
                T0 + timedelta(minutes=2),
                "dispute",
                lost,
            ),
            _stripe_event(
                "pac_stripe2",
                "charge.dispute.funds_withdrawn",
                _dispute("dp_won", "pi_won", "needs_response", balance_transactions=withdrawn),
                T0 + timedelta(minutes=3),
                "dispute",
                won,
            ),
            _stripe_event(
                "pac_stripe1",
                "charge.dispute.closed",
                _dispute("dp_lost", "pi_lost", "lost", balance_transactions=withdrawn),
                T0 + timedelta(days=3),
                "dispute",
                lost,
            ),
            _stripe_event(
                "pac_stripe2",
                "charge.dispute.funds_reinstated",
                _dispute("dp_won", "pi_won", "won", balance_transactions=[*withdrawn, {"amount": 5000}]),
                T0 + timedelta(days=4),
                "dispute",
                won,
            ),
        )
        await _insert(engine, ProviderEventRow, *rows)
        by_one = [e for e in await _walk(client, limit=1) if isinstance(e, ProviderDisputeUpdatedV1)]
        by_many = [e for e in await _walk(client, limit=100) if isinstance(e, ProviderDisputeUpdatedV1)]
        assert [e.model_dump(exclude={"event_id"}) for e in by_one] == [
            e.model_dump(exclude={"event_id"}) for e in by_many
        ]
        # In the inbox's order, each once, caused by its inbox row as the live event was.
        assert [e.causation_id for e in by_one] == [r["id"] for r in rows]
        states = [
            (e.data.provider_dispute_id, e.data.status, e.data.funds_withdrawn, e.data.provider_updated_at)
            for e in by_one
        ]
        assert states == [
            ("dp_lost", "needs_response", False, T0),
            ("dp_won", "needs_response", False, T0 + timedelta(minutes=1)),
            ("dp_lost", "needs_response", True, T0 + timedelta(minutes=2)),
            ("dp_won", "needs_response", True, T0 + timedelta(minutes=3)),
            ("dp_lost", "lost", True, T0 + timedelta(days=3)),
            ("dp_won", "won", False, T0 + timedelta(days=4)),
        ]
        first = by_one[0]
        assert (first.tenant_id, first.correlation_id, first.occurred_at) == (
            TENANT,
            lost["payment_id"],
            T0 + timedelta(seconds=2),
        )
        assert (first.data.payment_id, first.data.provider_transaction_id, first.data.amount, first.data.currency) == (
            lost["payment_id"],
            lost["id"],
            5000,
            "USD",
        )
        assert (first.data.provider_created_at, first.data.evidence_due_by) == (T0, T0 + timedelta(days=7))
        # Each under the tenant of its own payment.
        assert {e.data.payment_id: e.tenant_id for e in by_one} == {
            lost["payment_id"]: TENANT,
            won["payment_id"]: "ten_bbbbbbbbbbbbbbbb",
        }

    async def test_nothing_but_published_dispute_states_of_our_payments_is_served(
        self, make_client: Any, engine: AsyncEngine
    ) -> None:
        client = await make_client()
        txn = _txn("stripe", account_id="pac_stripe1", provider_reference="pi_1")
        await _insert(engine, ProviderTransactionRow, txn)
        published = _stripe_event(
            "pac_stripe1", "charge.dispute.created", _dispute("dp_1", "pi_1", "needs_response"), T0, "dispute", txn
        )
        await _insert(
            engine,
            ProviderEventRow,
            published,
            # A dispute of a charge not ours: only recorded.
            _stripe_event(
                "pac_stripe1",
                "charge.dispute.created",
                _dispute("dp_x", "pi_x", "needs_response"),
                T0,
                "unknown_transaction",
                None,
            ),
            # The same Stripe event received for another account of ours (one Stripe account behind two
            # of ours): the payment is not that account's, so nothing was published for it.
            _stripe_event(
                "pac_other",
                "charge.dispute.created",
                _dispute("dp_1", "pi_1", "needs_response"),
                T0,
                "unknown_transaction",
                None,
            ),
            # A row naming a dispute result under another account than the payment's: never served.
            _stripe_event(
                "pac_other", "charge.dispute.updated", _dispute("dp_1", "pi_1", "under_review"), T0, "dispute", txn
            ),
            # Other objects' events of the same payment.
            _stripe_event(
                "pac_stripe1",
                "refund.updated",
                {"id": "re_1", "object": "refund", "payment_intent": "pi_1"},
                T0,
                "refund_recorded",
                txn,
            ),
            _stripe_event(
                "pac_stripe1",
                "charge.succeeded",
                {"id": "ch_1", "object": "charge", "payment_intent": "pi_1"},
                T0,
                "succeeded",
                txn,
            ),
        )
        # A dispute projected (stripe_objects) but never published: the projection is no verdict.
        dispute_object = {
            **_stripe_refund("pac_stripe1", "dp_2", "pi_1", "needs_response"),
            "object": "dispute",
            "event_type": "charge.dispute.created",
        }
        await _insert(engine, StripeObjectRow, dispute_object)
        walked = await _walk(client, limit=2)
        disputes = [e for e in walked if isinstance(e, ProviderDisputeUpdatedV1)]
        assert [(e.causation_id, e.data.provider_dispute_id) for e in disputes] == [(published["id"], "dp_1")]
        # The rest: the payment's own outcome only.
        assert [e.event_type for e in walked] == ["provider.payment.succeeded", "provider.dispute.updated"]

    async def test_a_state_published_between_pages_is_walked_after_the_cursor(
        self, make_client: Any, engine: AsyncEngine
    ) -> None:
        client = await make_client()
        txn = _txn("stripe", account_id="pac_stripe1", provider_reference="pi_1")
        await _insert(engine, ProviderTransactionRow, txn)
        states = _in_order(
            *(
                _stripe_event(
                    "pac_stripe1",
                    "charge.dispute.updated",
                    _dispute("dp_1", "pi_1", "needs_response"),
                    T0 + timedelta(minutes=n),
                    "dispute",
                    txn,
                )
                for n in range(3)
            )
        )
        await _insert(engine, ProviderEventRow, *states)
        later: list[dict[str, Any]] = []

        async def meanwhile(_page: int) -> None:
            row = _stripe_event(
                "pac_stripe1",
                "charge.dispute.closed",
                _dispute("dp_1", "pi_1", "lost"),
                T0 + timedelta(days=1),
                "dispute",
                txn,
            )
            later.append(row)
            await _insert(engine, ProviderEventRow, row)

        walked = [e for e in await _walk(client, limit=2, between=meanwhile) if isinstance(e, ProviderDisputeUpdatedV1)]
        causes = [e.causation_id for e in walked]
        assert causes == sorted(causes)
        assert causes == [r["id"] for r in states + later]
