"""Refunds at Stripe (localstripe: refunds are synchronous ``succeeded``, and Stripe's ``reason`` is
refused, so ours travels in the metadata): a ``refund.created`` request becomes one refund at Stripe,
keyed by our refund id; refunds made in Stripe's dashboard arrive as signed ``refund.*`` webhooks and are
published with no refund id of ours; a webhook about a refund of ours never publishes a final verdict
twice."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import pytest
from billing_contracts.events import PaymentSnapshot, RefundCreatedV1, RefundData, RefundSnapshot
from providers_svc.db.models import ProviderTransactionRow, outbox
from providers_svc.keys import refunds_key
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from .conftest import TENANT, StripeShop, stripe_event

pytestmark = pytest.mark.postgres


def refund_created(payment_id: str, *, amount: int, reason: str | None = None) -> RefundCreatedV1:
    """``refund.created`` as payments-svc publishes it (tests/refunds/conftest.py has the general one)."""
    now = datetime.now(UTC)
    refund = RefundSnapshot(
        id=f"rfnd_{secrets.token_hex(8)}", payment_id=payment_id, amount=amount, currency="USD",
        status="PENDING", reason=reason, provider="stripe", created_at=now, updated_at=now,
    )  # fmt: skip
    payment = PaymentSnapshot(
        id=payment_id, status="SUCCEEDED", amount=5000, currency="USD", order_id="order-1", provider="stripe",
        created_at=now, updated_at=now, expires_at=now,
    )  # fmt: skip
    return RefundCreatedV1(tenant_id=TENANT, data=RefundData(refund=refund, payment=payment))


async def mark_paid(engine: AsyncEngine, txn_id: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            update(ProviderTransactionRow).where(ProviderTransactionRow.id == txn_id).values(status="succeeded")
        )


async def refund_events(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(outbox.c.body)
            .where(outbox.c.routing_key == "providers.provider.refund.updated.v1")
            .order_by(outbox.c.id)
        )
        return [json.loads(body) for body in rows.scalars()]


async def paid(shop: StripeShop, engine: AsyncEngine) -> dict[str, Any]:
    started = await shop.start()
    resp = await shop.pay(started, "visa")
    assert resp.status == 303, await resp.text()
    # What the payment_intent.succeeded webhook does (localstripe's own webhook is not pointed here).
    await mark_paid(engine, started["provider_transaction_id"])
    return started


class TestRefundRequests:
    async def test_a_request_is_one_refund_at_stripe_keyed_by_our_refund_id(
        self, shop: StripeShop, engine: AsyncEngine
    ) -> None:
        started = await paid(shop, engine)
        event = refund_created(started["payment_id"], amount=1500, reason="damaged")
        refunds = shop.client.app[refunds_key]
        assert await refunds.accept(event) == "succeeded"
        assert await refunds.accept(event) == "duplicate"
        sent = [r for r in await shop.localstripe.requests("/v1/refunds") if r["method"] == "POST"]
        ours = [r for r in sent if parse_qs(r["body"]).get("metadata[refund_id]") == [event.data.refund.id]]
        assert len(ours) == 1
        assert ours[0]["idempotency_key"] == event.data.refund.id
        assert parse_qs(ours[0]["body"])["amount"] == ["1500"]
        [published] = await refund_events(engine)
        data = published["data"]
        assert (data["refund_id"], data["status"], data["amount"]) == (event.data.refund.id, "succeeded", 1500)
        assert str(data["provider_refund_id"]).startswith("re_")

        # Stripe's webhook about the same refund (metadata names ours): already final, nothing more.
        refund = {
            "id": data["provider_refund_id"],
            "object": "refund",
            "payment_intent": started["provider_reference"],
            "amount": 1500,
            "currency": "usd",
            "status": "succeeded",
            "metadata": {"refund_id": event.data.refund.id},
        }
        assert (await shop.send(stripe_event("refund.updated", refund))).status == 200
        assert len(await refund_events(engine)) == 1


class TestDashboardRefunds:
    async def test_a_refund_made_in_stripes_dashboard_is_published_without_our_id(
        self, shop: StripeShop, engine: AsyncEngine
    ) -> None:
        started = await paid(shop, engine)
        refund = {
            "id": "re_dashboard1",
            "object": "refund",
            "payment_intent": started["provider_reference"],
            "amount": 700,
            "currency": "usd",
            "status": "pending",
            "metadata": {},
        }
        created = stripe_event("refund.created", refund)
        assert (await shop.send(created)).status == 200
        assert (await shop.send(created)).status == 200  # Stripe's duplicate delivery
        done = stripe_event("refund.updated", {**refund, "status": "succeeded"})
        assert (await shop.send(done)).status == 200
        events = await refund_events(engine)
        assert [(e["data"]["refund_id"], e["data"]["provider_refund_id"], e["data"]["status"]) for e in events] == [
            (None, "re_dashboard1", "pending"),
            (None, "re_dashboard1", "succeeded"),
        ]
        assert {e["data"]["amount"] for e in events} == {700}
        assert {e["data"]["observed_via"] for e in events} == {"callback"}
        assert events[0]["data"]["provider_transaction_id"] == started["provider_transaction_id"]

    async def test_the_refunds_a_charge_refunded_embeds_are_published_once_each(
        self, shop: StripeShop, engine: AsyncEngine
    ) -> None:
        # Older API versions embed the charge's refunds in charge.refunded (newer ones embed none and send
        # refund.* events for each): every embedded refund is a verdict, a repeat of the event is not.
        started = await paid(shop, engine)
        intent = started["provider_reference"]

        def embedded(id_: str, amount: int) -> dict[str, Any]:
            return {"id": id_, "object": "refund", "payment_intent": intent, "amount": amount, "currency": "usd",
                    "status": "succeeded", "metadata": {}}  # fmt: skip

        refunds = {"object": "list", "data": [embedded("re_old1", 1000), embedded("re_old2", 500)]}
        charge = {"id": "ch_old1", "object": "charge", "payment_intent": intent, "amount": 5000, "currency": "usd",
                  "amount_refunded": 1500, "refunded": False, "refunds": refunds}  # fmt: skip
        refunded = stripe_event("charge.refunded", charge)
        assert (await shop.send(refunded)).status == 200
        assert (await shop.send(refunded)).status == 200  # Stripe's duplicate delivery
        events = await refund_events(engine)
        assert sorted((e["data"]["provider_refund_id"], e["data"]["amount"], e["data"]["status"]) for e in events) == [
            ("re_old1", 1000, "succeeded"),
            ("re_old2", 500, "succeeded"),
        ]
        newer = stripe_event("charge.refunded", {**charge, "id": "ch_new1", "refunds": None})
        assert (await shop.send(newer)).status == 200
        assert len(await refund_events(engine)) == 2

    async def test_a_refund_of_another_currency_is_recorded_but_not_published(
        self, shop: StripeShop, engine: AsyncEngine
    ) -> None:
        started = await paid(shop, engine)
        refund = {"id": "re_odd", "object": "refund", "payment_intent": started["provider_reference"], "amount": 700,
                  "currency": "eur", "status": "succeeded"}  # fmt: skip
        assert (await shop.send(stripe_event("refund.created", refund))).status == 200
        assert await refund_events(engine) == []


async def requested_refund(make_client: Any, event: RefundCreatedV1) -> None:
    """Our refund stored and left ``requested`` (attempt 1 made): a replica where Stripe is not enabled
    could not reach it, as an attempt whose answer was lost leaves it."""
    without = await make_client(enabled_providers=["sandbox"])
    assert await without.app[refunds_key].accept(event) == "requested"


async def outbox_of(engine: AsyncEngine, routing_key: str) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(outbox.c.body).where(outbox.c.routing_key == routing_key).order_by(outbox.c.id)
        )
        return [json.loads(body) for body in rows.scalars()]


class TestRetriedRefunds:
    async def test_a_retry_adopts_the_refund_an_earlier_attempt_made_instead_of_making_another(
        self, shop: StripeShop, engine: AsyncEngine, make_client: Any
    ) -> None:
        started = await paid(shop, engine)
        event = refund_created(started["payment_id"], amount=1500)
        refund_id = event.data.refund.id
        await requested_refund(make_client, event)
        # What that first attempt made at Stripe, its answer lost (and its idempotency key forgotten by
        # the time of the retry: Stripe keeps keys 24 hours; localstripe keeps none).
        made = await shop.localstripe.call(
            "POST", "/v1/refunds", shop.secret_key,
            payment_intent=started["provider_reference"], amount="1500", **{"metadata[refund_id]": refund_id},
        )  # fmt: skip
        assert str(made["id"]).startswith("re_")

        after = await shop.client.app[refunds_key].send(refund_id)
        assert after is not None and (after.status.value, after.provider_refund_id) == ("succeeded", made["id"])
        sent = [r for r in await shop.localstripe.requests("/v1/refunds") if r["method"] == "POST"]
        assert len([r for r in sent if parse_qs(r["body"]).get("metadata[refund_id]") == [refund_id]]) == 1
        [published] = await refund_events(engine)
        assert (published["data"]["refund_id"], published["data"]["provider_refund_id"]) == (refund_id, made["id"])

    async def test_a_retry_makes_the_refund_when_no_attempt_made_it(
        self, shop: StripeShop, engine: AsyncEngine, make_client: Any
    ) -> None:
        started = await paid(shop, engine)
        event = refund_created(started["payment_id"], amount=1500)
        await requested_refund(make_client, event)
        lists_before = [r for r in await shop.localstripe.requests("/v1/refunds") if r["method"] == "GET"]
        after = await shop.client.app[refunds_key].send(event.data.refund.id)
        assert after is not None and after.status.value == "succeeded"
        listed = [r for r in await shop.localstripe.requests("/v1/refunds") if r["method"] == "GET"]
        assert len(listed) == len(lists_before) + 1  # the retry looked first
        sent = [r for r in await shop.localstripe.requests("/v1/refunds") if r["method"] == "POST"]
        ours = [r for r in sent if parse_qs(r["body"]).get("metadata[refund_id]") == [event.data.refund.id]]
        assert len(ours) == 1


class TestChargeRefundUpdated:
    """``charge.refund.updated``, Stripe's legacy name of ``refund.updated`` (its object is the refund),
    is a verdict as that one is."""

    async def test_it_moves_a_refund_of_ours_once(
        self, shop: StripeShop, engine: AsyncEngine, make_client: Any
    ) -> None:
        started = await paid(shop, engine)
        event = refund_created(started["payment_id"], amount=1500)
        refund_id = event.data.refund.id
        await requested_refund(make_client, event)
        refund = {
            "id": "re_legacy1",
            "object": "refund",
            "payment_intent": started["provider_reference"],
            "amount": 1500,
            "currency": "usd",
            "status": "succeeded",
            "metadata": {"refund_id": refund_id},
        }
        updated = stripe_event("charge.refund.updated", refund)
        assert (await shop.send(updated)).status == 200
        assert (await shop.send(updated)).status == 200  # Stripe's duplicate delivery
        # And the same verdict under its newer name: already final, nothing more.
        assert (await shop.send(stripe_event("refund.updated", refund))).status == 200
        [published] = await refund_events(engine)
        data = published["data"]
        assert (data["refund_id"], data["provider_refund_id"], data["status"], data["amount"]) == (
            refund_id,
            "re_legacy1",
            "succeeded",
            1500,
        )
        assert data["observed_via"] == "callback"

    async def test_a_dashboard_refund_is_published_without_our_id(self, shop: StripeShop, engine: AsyncEngine) -> None:
        started = await paid(shop, engine)
        refund = {"id": "re_legacy_dash", "object": "refund", "payment_intent": started["provider_reference"],
                  "amount": 700, "currency": "usd", "status": "pending", "metadata": {}}  # fmt: skip
        assert (await shop.send(stripe_event("charge.refund.updated", refund))).status == 200
        done = stripe_event("charge.refund.updated", {**refund, "status": "failed", "failure_reason": "unknown"})
        assert (await shop.send(done)).status == 200
        events = await refund_events(engine)
        assert [(e["data"]["refund_id"], e["data"]["provider_refund_id"], e["data"]["status"]) for e in events] == [
            (None, "re_legacy_dash", "pending"),
            (None, "re_legacy_dash", "failed"),
        ]
        assert {e["data"]["amount"] for e in events} == {700}
        assert events[1]["data"]["failure_code"] == "stripe_unknown"
        assert events[0]["data"]["provider_transaction_id"] == started["provider_transaction_id"]


class TestContradictingWebhooks:
    async def test_stripes_success_of_a_refund_we_hold_failed_is_an_anomaly_once(
        self, shop: StripeShop, engine: AsyncEngine, make_client: Any
    ) -> None:
        started = await paid(shop, engine)
        event = refund_created(started["payment_id"], amount=1500)
        refund_id = event.data.refund.id
        await requested_refund(make_client, event)
        refund = {
            "id": "re_contradicted1",
            "object": "refund",
            "payment_intent": started["provider_reference"],
            "amount": 1500,
            "currency": "usd",
            "status": "failed",
            "failure_reason": "expired_or_canceled_card",
            "metadata": {"refund_id": refund_id},
        }
        assert (await shop.send(stripe_event("refund.failed", refund))).status == 200
        assert [e["data"]["status"] for e in await refund_events(engine)] == ["failed"]

        succeeded = stripe_event("refund.updated", {**refund, "status": "succeeded"})
        assert (await shop.send(succeeded)).status == 200
        assert (await shop.send(succeeded)).status == 200  # Stripe's duplicate delivery
        assert [e["data"]["status"] for e in await refund_events(engine)] == ["failed"]  # a final verdict is final
        [anomaly] = await outbox_of(engine, "providers.provider.anomaly.recorded.v1")
        data = anomaly["data"]
        assert (data["kind"], data["outcome"], data["refund_id"], data["provider_refund_id"]) == (
            "unexpected_outcome",
            "refund",
            refund_id,
            "re_contradicted1",
        )
        assert "succeeded" in data["detail"] and "failed" in data["detail"]
