"""Stripe delivers more than once and out of order: duplicates move money once, an older event never
overwrites a newer state (the intent is re-fetched), a declined try is no failure, other money is an
anomaly, another account's event moves nothing."""

from __future__ import annotations

import time
from typing import Any

import pytest
from providers_svc.db.stripe import StripeIntentRow
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from .conftest import StripeShop, new_webhook_secret, stripe_event
from .helpers import intent_at_fake, intent_object, outbox_events, transaction

pytestmark = pytest.mark.postgres


class TestDeliveries:
    async def test_a_duplicate_moves_money_once(self, shop: StripeShop, db_read: Any) -> None:
        started = await shop.start()
        event = stripe_event("payment_intent.succeeded", intent_object(started, "succeeded"))
        for _ in range(3):
            assert (await shop.send(event)).status == 200
        assert [e["event_type"] for e in outbox_events(await db_read("outbox"))] == ["provider.payment.succeeded"]
        [row] = await db_read("events")
        assert row["result"] == "applied"

    async def test_an_unknown_type_is_recorded_and_acknowledged(self, shop: StripeShop, db_read: Any) -> None:
        resp = await shop.send(stripe_event("customer.created", {"id": "cus_1", "object": "customer"}))
        assert resp.status == 200
        [row] = await db_read("events")
        assert (row["event_type"], row["result"]) == ("customer.created", "recorded")

    async def test_a_declined_try_then_a_success_on_the_same_intent(self, shop: StripeShop, db_read: Any) -> None:
        started = await shop.start()
        now = int(time.time())
        error = {"code": "card_declined", "decline_code": "generic_decline", "message": "Declined"}
        failed = intent_object(started, "requires_payment_method", last_payment_error=error)
        await shop.send(stripe_event("payment_intent.payment_failed", failed, created=now - 10))
        assert (await transaction(db_read, started["provider_transaction_id"]))["status"] == "pending"
        await shop.send(stripe_event("payment_intent.succeeded", intent_object(started, "succeeded"), created=now))
        txn = await transaction(db_read, started["provider_transaction_id"])
        assert (txn["status"], txn["failure_code"]) == ("succeeded", None)

    async def test_a_cancelled_intent_fails_with_the_last_card_error(self, shop: StripeShop, db_read: Any) -> None:
        started = await shop.start()
        now = int(time.time())
        error = {"code": "card_declined", "decline_code": "stolen_card", "message": "Stolen"}
        failed = intent_object(started, "requires_payment_method", last_payment_error=error)
        await shop.send(stripe_event("payment_intent.payment_failed", failed, created=now - 10))
        cancelled = intent_object(started, "canceled", cancellation_reason="abandoned")
        await shop.send(stripe_event("payment_intent.canceled", cancelled, created=now))
        txn = await transaction(db_read, started["provider_transaction_id"])
        assert (txn["status"], txn["failure_code"], txn["failure_message"]) == (
            "failed",
            "stripe_stolen_card",
            "Stolen",
        )

    async def test_an_older_event_never_overwrites_a_newer_state(
        self, shop: StripeShop, db_read: Any, engine: AsyncEngine
    ) -> None:
        """3-D Secure asked (newer) arrives before the payer's earlier decline (older): the stored state
        stays the intent's real one (re-fetched from Stripe), and the old error is not taken as news."""
        started = await shop.start()
        assert (await shop.pay(started, "3ds_pending")).status == 303
        intent = await intent_at_fake(shop, started["provider_reference"])
        assert intent["status"] == "requires_action"
        now = int(time.time())
        await shop.send(stripe_event("payment_intent.requires_action", intent, created=now))
        error = {"code": "card_declined", "message": "Declined earlier"}
        older = intent_object(started, "requires_payment_method", last_payment_error=error)
        assert (await shop.send(stripe_event("payment_intent.payment_failed", older, created=now - 30))).status == 200
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    select(StripeIntentRow.__table__).where(
                        StripeIntentRow.transaction_id == started["provider_transaction_id"]
                    )
                )
            ).one()
        assert row.status == "requires_action"
        assert row.failure_code is None
        assert row.status_at.timestamp() == now
        assert (await transaction(db_read, started["provider_transaction_id"]))["status"] == "pending"

    async def test_a_late_cancel_never_undoes_a_success(self, shop: StripeShop, db_read: Any) -> None:
        started = await shop.start()
        assert (await shop.pay(started, "visa")).status == 303
        now = int(time.time())
        await shop.send(stripe_event("payment_intent.succeeded", intent_object(started, "succeeded"), created=now))
        # An older picture that says "canceled": the intent as Stripe has it now (re-fetched) decides.
        await shop.send(stripe_event("payment_intent.canceled", intent_object(started, "canceled"), created=now - 5))
        txn = await transaction(db_read, started["provider_transaction_id"])
        assert txn["status"] == "succeeded"
        assert [e["event_type"] for e in outbox_events(await db_read("outbox"))] == ["provider.payment.succeeded"]
        assert await db_read("anomalies") == []

    async def test_another_amount_is_an_anomaly_not_a_payment(self, shop: StripeShop, db_read: Any) -> None:
        started = await shop.start()
        await shop.send(stripe_event("payment_intent.succeeded", intent_object(started, "succeeded", amount=4000)))
        assert (await transaction(db_read, started["provider_transaction_id"]))["status"] == "pending"
        [anomaly] = await db_read("anomalies")
        assert anomaly["kind"] == "amount_mismatch"

    async def test_an_event_of_another_accounts_transaction_moves_nothing(self, shop: StripeShop, db_read: Any) -> None:
        """Another Stripe account (its own secret) names our transaction: not its to move."""
        started = await shop.start()
        other_secret = new_webhook_secret()
        await shop.add_account(webhook_secret=other_secret)
        event = stripe_event("payment_intent.succeeded", intent_object(started, "succeeded"))
        assert (await shop.send(event, secret=other_secret)).status == 200
        [row] = await db_read("events")
        assert row["result"] == "unknown_transaction"
        assert (await transaction(db_read, started["provider_transaction_id"]))["status"] == "pending"
        assert await db_read("outbox") == []


class TestTwoAccountsOfOneStripeAccount:
    async def test_each_account_records_the_event_once_and_the_payments_own_applies_it(
        self, shop: StripeShop, db_read: Any
    ) -> None:
        """An account replaced by another on the same Stripe account, each with its own endpoint: Stripe
        sends every event to both. The other account's delivery must not swallow the payment's own."""
        started = await shop.start()
        other_secret = new_webhook_secret()
        await shop.add_account(webhook_secret=other_secret)
        event = stripe_event("payment_intent.succeeded", intent_object(started, "succeeded"))
        assert (await shop.send(event, secret=other_secret)).status == 200
        assert (await shop.send(event)).status == 200
        assert (await shop.send(event)).status == 200  # and a true duplicate is still one
        assert (await transaction(db_read, started["provider_transaction_id"]))["status"] == "succeeded"
        results = sorted(r["result"] for r in await db_read("events"))
        assert results == ["applied", "unknown_transaction"]
        assert [e["event_type"] for e in outbox_events(await db_read("outbox"))] == ["provider.payment.succeeded"]
