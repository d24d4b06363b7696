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
from billing_contracts.events import ProviderPaymentSucceededV1, ProviderRefundUpdatedV1, parse_event
from billing_runtime.ids import new_id
from providers_svc.db.models import ProviderTransactionRow
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
