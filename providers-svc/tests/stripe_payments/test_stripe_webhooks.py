"""``POST /billing/stripe`` on real PostgreSQL: localstripe's own signed webhooks after a payer pays on
our payer page, and hand-signed events (stripe-python's ``generate_signature_header``) for what
localstripe cannot send: Checkout Sessions, capture, disputes, refunds, Connect, bad input, duplicates
and out-of-order deliveries."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from providers_svc.db.models import ProviderTransactionRow
from providers_svc.db.stripe import StripeIntentRow
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from .conftest import TENANT, ShopFactory, StripeShop, stripe_event

pytestmark = pytest.mark.postgres

Eventually = Callable[..., Awaitable[None]]


async def _intent_row(engine: AsyncEngine, txn_id: str) -> Any:
    async with engine.connect() as conn:
        return (
            await conn.execute(select(StripeIntentRow.__table__).where(StripeIntentRow.transaction_id == txn_id))
        ).first()


async def _txn(db_read: Any, txn_id: str) -> Any:
    [txn] = [t for t in await db_read("transactions") if t["id"] == txn_id]
    return txn


def _outbox(rows: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(row["body"]) for row in rows]


def _outbox_types(rows: list[Any]) -> list[str]:
    return [event["event_type"] for event in _outbox(rows)]


async def _intent(shop: StripeShop, intent_id: str) -> dict[str, Any]:
    return await shop.localstripe.call("GET", f"/v1/payment_intents/{intent_id}", shop.secret_key)


async def _session_txn(engine: AsyncEngine, shop: StripeShop, *, amount: int = 5000) -> tuple[str, str]:
    """A transaction started with a Checkout Session (localstripe has none to start one): (ptx, cs id)."""
    ptx, session = f"ptx_test{secrets.token_hex(8)}", f"cs_test_{secrets.token_hex(8)}"
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(
            insert(ProviderTransactionRow).values(
                id=ptx,
                tenant_id=TENANT,
                payment_id=f"pay_{secrets.token_hex(8)}",
                provider="stripe",
                amount=amount,
                currency="USD",
                livemode=False,
                status="pending",
                provider_reference=session,
                redirect_url=f"https://checkout.stripe.com/c/pay/{session}",
                account_id=shop.account_id,
                expires_at=now + timedelta(minutes=30),
                created_at=now,
                updated_at=now,
            )
        )
    return ptx, session


def _session(ptx: str, session: str, **fields: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": session,
        "object": "checkout.session",
        "client_reference_id": ptx,
        "metadata": {"transaction_id": ptx},
        "amount_total": 5000,
        "currency": "usd",
        "status": "complete",
        "payment_status": "paid",
        "payment_intent": f"pi_test{secrets.token_hex(6)}",
    }
    obj.update(fields)
    return obj


class TestLocalStripeDelivers:
    """localstripe's webhook to our endpoint, with its own signature (PROTOCOLS.md §5a)."""

    async def test_a_card_payment_succeeds_once(self, shop: StripeShop, db_read: Any, eventually: Eventually) -> None:
        await shop.localstripe.hook(str(shop.client.make_url("/billing/stripe")), shop.webhook_secret)
        started = await shop.start()
        ptx = started["provider_transaction_id"]
        resp = await shop.pay(started, "visa")
        assert resp.status == 303
        assert resp.headers["Location"] == shop.payment_request()["return_url"]

        async def settled() -> bool:
            return str((await _txn(db_read, ptx))["status"]) == "succeeded"

        await eventually(settled)
        txn = await _txn(db_read, ptx)
        assert txn["provider_reference"] == started["provider_reference"]
        [outcome] = _outbox(await db_read("outbox"))
        assert outcome["event_type"] == "provider.payment.succeeded"
        assert outcome["data"]["provider_transaction_id"] == ptx
        [event] = await db_read("events")
        assert (event["event_type"], event["result"], event["transaction_id"]) == (
            "payment_intent.succeeded",
            "applied",
            ptx,
        )

    async def test_a_declined_card_leaves_the_payment_open(
        self, shop: StripeShop, db_read: Any, engine: AsyncEngine, eventually: Eventually
    ) -> None:
        await shop.localstripe.hook(str(shop.client.make_url("/billing/stripe")), shop.webhook_secret)
        started = await shop.start()
        ptx = started["provider_transaction_id"]
        resp = await shop.pay(started, "decline")
        assert resp.status == 303
        assert "error=stripe_" in resp.headers["Location"]

        async def recorded() -> bool:
            return any(e["event_type"] == "payment_intent.payment_failed" for e in await db_read("events"))

        await eventually(recorded)
        # Not a failure: the payer may try again on the same intent.
        assert (await _txn(db_read, ptx))["status"] == "pending"
        row = await _intent_row(engine, ptx)
        assert row.status == "requires_payment_method"
        assert row.failure_code is not None and row.failure_code.startswith("stripe_")
        assert _outbox_types(await db_read("outbox")) == []
        # (localstripe refuses a second confirmation of a declined intent, so the retry on the same
        # intent is covered with signed events below.)

    async def test_3d_secure_stays_pending_until_the_payer_authenticates(
        self, shop: StripeShop, db_read: Any, eventually: Eventually
    ) -> None:
        await shop.localstripe.hook(str(shop.client.make_url("/billing/stripe")), shop.webhook_secret)
        started = await shop.start()
        ptx = started["provider_transaction_id"]
        assert (await shop.pay(started, "3ds_pending")).status == 303
        assert (await _intent(shop, started["provider_reference"]))["status"] == "requires_action"
        # Stripe's requires_action event (localstripe sends none): nothing moves.
        intent = await _intent(shop, started["provider_reference"])
        assert (await shop.send(stripe_event("payment_intent.requires_action", intent))).status == 200
        assert (await _txn(db_read, ptx))["status"] == "pending"

    async def test_3d_secure_approved_succeeds(self, shop: StripeShop, db_read: Any, eventually: Eventually) -> None:
        await shop.localstripe.hook(str(shop.client.make_url("/billing/stripe")), shop.webhook_secret)
        started = await shop.start()
        ptx = started["provider_transaction_id"]
        assert (await shop.pay(started, "3ds")).status == 303

        async def settled() -> bool:
            return str((await _txn(db_read, ptx))["status"]) == "succeeded"

        await eventually(settled)


class TestManualCapture:
    async def test_an_authorised_intent_is_captured_by_us(self, stripe_shop_factory: ShopFactory, db_read: Any) -> None:
        shop = await stripe_shop_factory(capture_method="manual")
        started = await shop.start()
        assert (await shop.pay(started, "visa")).status == 303
        intent = await _intent(shop, started["provider_reference"])
        assert intent["status"] == "requires_capture"
        resp = await shop.send(stripe_event("payment_intent.amount_capturable_updated", intent))
        assert resp.status == 200, await resp.text()
        assert (await _intent(shop, started["provider_reference"]))["status"] == "succeeded"
        txn = await _txn(db_read, started["provider_transaction_id"])
        assert txn["status"] == "succeeded"
        assert _outbox_types(await db_read("outbox")) == ["provider.payment.succeeded"]

    async def test_an_authorised_intent_of_a_closed_payment_is_cancelled(
        self, stripe_shop_factory: ShopFactory, db_read: Any, engine: AsyncEngine
    ) -> None:
        shop = await stripe_shop_factory(capture_method="manual")
        started = await shop.start()
        assert (await shop.pay(started, "visa")).status == 303
        intent = await _intent(shop, started["provider_reference"])
        # The payment was cancelled on our side meanwhile (its own cancel released nothing: the
        # authorisation came after).
        async with engine.begin() as conn:
            await conn.execute(
                update(ProviderTransactionRow)
                .where(ProviderTransactionRow.id == started["provider_transaction_id"])
                .values(status="cancelled")
            )
        resp = await shop.send(stripe_event("payment_intent.amount_capturable_updated", intent))
        assert resp.status == 200
        assert (await _intent(shop, started["provider_reference"]))["status"] == "canceled"
        assert _outbox_types(await db_read("outbox")) == []


class TestCheckoutSession:
    async def test_a_paid_session_succeeds_with_the_intent_as_reference(
        self, shop: StripeShop, engine: AsyncEngine, db_read: Any
    ) -> None:
        ptx, session = await _session_txn(engine, shop)
        obj = _session(ptx, session)
        assert (await shop.send(stripe_event("checkout.session.completed", obj))).status == 200
        txn = await _txn(db_read, ptx)
        assert (txn["status"], txn["provider_reference"]) == ("succeeded", obj["payment_intent"])
        assert _outbox_types(await db_read("outbox")) == ["provider.payment.succeeded"]

    async def test_an_unpaid_session_waits_for_the_async_outcome(
        self, shop: StripeShop, engine: AsyncEngine, db_read: Any
    ) -> None:
        ptx, session = await _session_txn(engine, shop)
        obj = _session(ptx, session, payment_status="unpaid")
        assert (await shop.send(stripe_event("checkout.session.completed", obj))).status == 200
        assert (await _txn(db_read, ptx))["status"] == "pending"
        resp = await shop.send(stripe_event("checkout.session.async_payment_failed", obj))
        assert resp.status == 200
        txn = await _txn(db_read, ptx)
        assert (txn["status"], txn["failure_code"]) == ("failed", "stripe_async_payment_failed")
        assert _outbox_types(await db_read("outbox")) == ["provider.payment.failed"]

    async def test_an_unpaid_session_then_paid_asynchronously(
        self, shop: StripeShop, engine: AsyncEngine, db_read: Any
    ) -> None:
        ptx, session = await _session_txn(engine, shop)
        obj = _session(ptx, session, payment_status="unpaid")
        await shop.send(stripe_event("checkout.session.completed", obj))
        await shop.send(stripe_event("checkout.session.async_payment_succeeded", {**obj, "payment_status": "paid"}))
        assert (await _txn(db_read, ptx))["status"] == "succeeded"

    async def test_an_expired_session_fails_with_the_last_card_error(
        self, shop: StripeShop, engine: AsyncEngine, db_read: Any
    ) -> None:
        ptx, session = await _session_txn(engine, shop)
        obj = _session(ptx, session, status="open", payment_status="unpaid")
        failed = {
            "id": obj["payment_intent"],
            "object": "payment_intent",
            "status": "requires_payment_method",
            "amount": 5000,
            "currency": "usd",
            "metadata": {"transaction_id": ptx},
            "last_payment_error": {
                "code": "card_declined",
                "decline_code": "insufficient_funds",
                "message": "No funds",
            },
        }
        created = int(time.time()) - 60
        assert (await shop.send(stripe_event("payment_intent.payment_failed", failed, created=created))).status == 200
        assert (await _txn(db_read, ptx))["status"] == "pending"
        expired = {**obj, "status": "expired"}
        assert (await shop.send(stripe_event("checkout.session.expired", expired))).status == 200
        txn = await _txn(db_read, ptx)
        assert (txn["status"], txn["failure_code"], txn["failure_message"]) == (
            "failed",
            "stripe_insufficient_funds",
            "No funds",
        )

    async def test_a_session_event_of_another_session_moves_nothing(
        self, shop: StripeShop, engine: AsyncEngine, db_read: Any
    ) -> None:
        ptx, _ = await _session_txn(engine, shop)
        obj = _session(ptx, "cs_test_someoneelse")
        assert (await shop.send(stripe_event("checkout.session.completed", obj))).status == 200
        assert (await _txn(db_read, ptx))["status"] == "pending"
        [event] = await db_read("events")
        assert event["result"] == "unknown_payment"
