"""A payment's own manual capture at Stripe (``capture_method: manual``), against localstripe: the
PaymentIntent is created to capture manually, its authorisation is published as
``provider.payment.authorized`` (never captured by us), the tenant's capture (all or part, through
``POST /internal/payments/{id}/capture``) captures it at Stripe with a key derived from the payment
and publishes ``provider.payment.succeeded`` with what Stripe took, and Stripe's own later word on
the same capture changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import TENANT, StripeShop, stripe_event
from .helpers import intent_at_fake, payment_side, transaction

pytestmark = pytest.mark.postgres


async def _authorized(shop: StripeShop, db_read: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    started = await shop.start(capture_method="manual")
    assert (await shop.pay(started, "visa")).status == 303
    intent = await intent_at_fake(shop, started["provider_reference"])
    assert intent["status"] == "requires_capture"
    resp = await shop.send(stripe_event("payment_intent.amount_capturable_updated", intent))
    assert resp.status == 200, await resp.text()
    return started, intent


async def _capture(shop: StripeShop, started: dict[str, Any], amount: int) -> Any:
    return await shop.client.post(
        f"/internal/payments/{started['payment_id']}/capture",
        json={"provider": "stripe", "amount": amount, "currency": "USD"},
        headers=shop.internal_headers(TENANT),
    )


async def _captures_of(shop: StripeShop, started: dict[str, Any]) -> list[dict[str, Any]]:
    """The capture calls localstripe received for this payment's intent (it keeps every test's)."""
    path = f"/v1/payment_intents/{started['provider_reference']}/capture"
    return [r for r in await shop.localstripe.requests("/v1/payment_intents") if r["path"] == path]


class TestManualCaptureAtStripe:
    async def test_the_intent_is_created_for_manual_capture(self, shop: StripeShop) -> None:
        started = await shop.start(capture_method="manual")
        intent = await intent_at_fake(shop, started["provider_reference"])
        assert intent["capture_method"] == "manual"

    async def test_an_authorisation_is_published_and_left_for_the_tenant(self, shop: StripeShop, db_read: Any) -> None:
        started, _ = await _authorized(shop, db_read)
        assert (await intent_at_fake(shop, started["provider_reference"]))["status"] == "requires_capture"
        [event] = payment_side(await db_read("outbox"))
        assert event["event_type"] == "provider.payment.authorized"
        assert event["data"]["amount"] == 5000
        assert event["data"]["authorization_expires_at"] is not None
        txn = await transaction(db_read, started["provider_transaction_id"])
        assert (txn["status"], txn["authorized_at"] is not None) == ("pending", True)

    async def test_a_partial_capture_takes_part_and_stripes_word_on_it_is_absorbed(
        self, shop: StripeShop, db_read: Any
    ) -> None:
        started, _ = await _authorized(shop, db_read)
        resp = await _capture(shop, started, 3000)
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["amount_captured"] == 3000
        intent = await intent_at_fake(shop, started["provider_reference"])
        assert intent["status"] == "succeeded"
        txn = await transaction(db_read, started["provider_transaction_id"])
        assert (txn["status"], txn["captured_amount"]) == ("succeeded", 3000)
        [sent] = await _captures_of(shop, started)
        assert sent["idempotency_key"] == f"{TENANT}:{started['payment_id']}:{txn['id']}:capture:3000"
        # Stripe's own event of the capture: the same money, recorded and absorbed.
        succeeded = {**intent, "amount_received": 3000}
        assert (await shop.send(stripe_event("payment_intent.succeeded", succeeded))).status == 200
        events = payment_side(await db_read("outbox"))
        assert [e["event_type"] for e in events] == ["provider.payment.authorized", "provider.payment.succeeded"]
        assert events[1]["data"]["amount"] == 3000
        assert await db_read("anomalies") == []

    async def test_a_repeated_capture_is_answered_with_the_first(self, shop: StripeShop, db_read: Any) -> None:
        started, _ = await _authorized(shop, db_read)
        assert (await _capture(shop, started, 5000)).status == 200
        again = await _capture(shop, started, 5000)
        assert (again.status, (await again.json())["amount_captured"]) == (200, 5000)
        assert len(await _captures_of(shop, started)) == 1
        assert len([e for e in payment_side(await db_read("outbox")) if e["event_type"].endswith("succeeded")]) == 1

    async def test_more_than_the_hold_is_refused(self, shop: StripeShop, db_read: Any) -> None:
        started, _ = await _authorized(shop, db_read)
        resp = await _capture(shop, started, 5001)
        assert (resp.status, (await resp.json())["code"]) == (422, "amount_exceeds_capturable")

    async def test_an_unauthorised_payment_cannot_be_captured(self, shop: StripeShop) -> None:
        started = await shop.start(capture_method="manual")
        resp = await _capture(shop, started, 5000)
        assert (resp.status, (await resp.json())["code"]) == (409, "invalid_state")

    async def test_cancel_releases_the_hold(self, shop: StripeShop, db_read: Any) -> None:
        started, _ = await _authorized(shop, db_read)
        resp = await shop.client.post(
            f"/internal/payments/{started['payment_id']}/cancel", headers=shop.internal_headers(TENANT)
        )
        assert resp.status == 200, await resp.text()
        assert (await intent_at_fake(shop, started["provider_reference"]))["status"] == "canceled"

    async def test_sync_heals_a_capture_whose_record_was_lost(self, shop: StripeShop, db_read: Any) -> None:
        started, _ = await _authorized(shop, db_read)
        # Captured at Stripe, our record lost in a crash (the adapter called directly).
        adapter = await shop.adapter()
        from providers_svc.db.repositories import transaction_snapshot
        from providers_svc.keys import uow_factory_key

        async with shop.client.app[uow_factory_key]() as unit:
            txn = await transaction_snapshot(unit, started["provider_transaction_id"])
        assert txn is not None
        await adapter.capture(txn, 2000)
        recon = shop.internal_headers(None, issuer="reconciliation")
        resp = await shop.client.post(f"/internal/payments/{started['payment_id']}/sync", headers=recon)
        assert resp.status == 200, await resp.text()
        after = await transaction(db_read, started["provider_transaction_id"])
        assert after["status"] == "succeeded"
        events = payment_side(await db_read("outbox"))
        assert events[-1]["event_type"] == "provider.payment.succeeded"

    async def test_a_hold_of_a_payment_closed_meanwhile_is_released(
        self, shop: StripeShop, db_read: Any, engine: Any
    ) -> None:
        from providers_svc.db.models import ProviderTransactionRow
        from sqlalchemy import update

        started = await shop.start(capture_method="manual")
        assert (await shop.pay(started, "visa")).status == 303
        intent = await intent_at_fake(shop, started["provider_reference"])
        async with engine.begin() as conn:
            await conn.execute(
                update(ProviderTransactionRow)
                .where(ProviderTransactionRow.id == started["provider_transaction_id"])
                .values(status="cancelled")
            )
        assert (await shop.send(stripe_event("payment_intent.amount_capturable_updated", intent))).status == 200
        assert (await intent_at_fake(shop, started["provider_reference"]))["status"] == "canceled"
        assert payment_side(await db_read("outbox")) == []


class TestManualCaptureWithCheckoutSession:
    """localstripe has no Checkout Sessions: the session and its intent's events are built by hand and
    signed as Stripe signs them."""

    async def test_a_completed_session_only_holds_and_the_intent_authorizes(
        self, shop: StripeShop, db_read: Any, engine: Any
    ) -> None:
        import secrets
        from datetime import UTC, datetime, timedelta

        from providers_svc.db.models import ProviderTransactionRow
        from sqlalchemy import insert

        ptx, session = f"ptx_test{secrets.token_hex(8)}", f"cs_test_{secrets.token_hex(8)}"
        now = datetime.now(UTC)
        async with engine.begin() as conn:
            await conn.execute(
                insert(ProviderTransactionRow).values(
                    id=ptx,
                    tenant_id=TENANT,
                    payment_id=f"pay_{secrets.token_hex(8)}",
                    provider="stripe",
                    amount=5000,
                    currency="USD",
                    livemode=False,
                    status="pending",
                    capture_method="manual",
                    provider_reference=session,
                    redirect_url=f"https://checkout.stripe.com/c/pay/{session}",
                    account_id=shop.account_id,
                    expires_at=now + timedelta(minutes=30),
                    created_at=now,
                    updated_at=now,
                )
            )
        intent_id = f"pi_test{secrets.token_hex(6)}"
        completed = {
            "id": session,
            "object": "checkout.session",
            "client_reference_id": ptx,
            "metadata": {"transaction_id": ptx},
            "amount_total": 5000,
            "currency": "usd",
            "status": "complete",
            "payment_status": "unpaid",
            "payment_intent": intent_id,
        }
        assert (await shop.send(stripe_event("checkout.session.completed", completed))).status == 200
        assert payment_side(await db_read("outbox")) == []
        held = {
            "id": intent_id,
            "object": "payment_intent",
            "status": "requires_capture",
            "amount": 5000,
            "amount_capturable": 5000,
            "currency": "usd",
            "capture_method": "manual",
            "metadata": {"transaction_id": ptx},
        }
        resp = await shop.send(stripe_event("payment_intent.amount_capturable_updated", held))
        assert resp.status == 200, await resp.text()
        [event] = payment_side(await db_read("outbox"))
        assert (event["event_type"], event["data"]["provider_reference"]) == ("provider.payment.authorized", intent_id)
        txn = await transaction(db_read, ptx)
        assert (txn["status"], txn["provider_reference"]) == ("pending", intent_id)
