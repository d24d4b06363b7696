"""A subscription's metadata reaches the charges that paid its invoices, in the Stripe API versions
before 2025-03-31 (``charge.invoice``, ``invoice.subscription``) and from it ("basil": no invoice on the
charge, the subscription under ``invoice.parent.subscription_details``, the link an ``invoice_payment``),
whatever order the events arrive in. Every event goes through ``POST /billing/stripe`` signed as Stripe
signs it (stripe-python's ``generate_signature_header``)."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest
from billing_runtime.testing import finished_or_waiting_on_a_lock
from providers_svc.domain.stripe_events import VerifiedStripeEvent
from providers_svc.services.uow import ProvidersUnitOfWork
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from .conftest import TENANT, StripeShop, stripe_event
from .helpers import outbox_events

pytestmark = pytest.mark.postgres

BASIL = "2025-03-31.basil"
LEGACY = "2024-06-20"
PLAN = {"tenant_id": TENANT, "plan": "pro"}
SUB, INVOICE, INTENT, CHARGE = "sub_1RbSub01", "in_1RbInvoice01", "pi_3RbIntent01", "ch_3RbCharge01"


def _event(type_: str, obj: dict[str, Any], api_version: str, created: int) -> dict[str, Any]:
    event = stripe_event(type_, obj, created=created)
    event["api_version"] = api_version
    return event


def subscription(created: int) -> dict[str, Any]:
    return {
        "id": SUB,
        "object": "subscription",
        "created": created,
        "customer": "cus_RbCustomer01",
        "metadata": PLAN,
        "status": "active",
    }


def basil_invoice(created: int, **fields: Any) -> dict[str, Any]:
    # No subscription, charge, payment_intent or paid: the subscription is the invoice's parent.
    return {
        "id": INVOICE,
        "object": "invoice",
        "amount_due": 5000,
        "amount_paid": 5000,
        "created": created,
        "currency": "usd",
        "customer": "cus_RbCustomer01",
        "metadata": {},
        "parent": {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {"subscription": SUB, "metadata": None},
        },
        "status": "paid",
        **fields,
    }


def legacy_invoice(created: int) -> dict[str, Any]:
    return {
        "id": INVOICE,
        "object": "invoice",
        "amount_due": 5000,
        "amount_paid": 5000,
        "charge": CHARGE,
        "created": created,
        "currency": "usd",
        "customer": "cus_RbCustomer01",
        "metadata": {},
        "paid": True,
        "payment_intent": INTENT,
        "status": "paid",
        "subscription": SUB,
    }


def charge(created: int, *, invoice: str | None = None, intent: str | None = INTENT) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": CHARGE,
        "object": "charge",
        "amount": 5000,
        "amount_captured": 5000,
        "amount_refunded": 0,
        "captured": True,
        "created": created,
        "currency": "usd",
        "customer": "cus_RbCustomer01",
        "metadata": {},
        "payment_intent": intent,
        "status": "succeeded",
    }
    if invoice is not None:
        obj["invoice"] = invoice
    return obj


def invoice_payment(created: int, *, payment: dict[str, Any] | None = None) -> dict[str, Any]:
    """Stripe's InvoicePayment (https://docs.stripe.com/api/invoice-payment/object)."""
    return {
        "id": "inpay_1RbPayment01",
        "object": "invoice_payment",
        "amount_paid": 5000,
        "amount_requested": 5000,
        "created": created,
        "currency": "usd",
        "invoice": INVOICE,
        "is_default": True,
        "livemode": False,
        "payment": payment or {"type": "payment_intent", "payment_intent": INTENT},
        "status": "paid",
        "status_transitions": {"canceled_at": None, "paid_at": created},
    }


async def deliver(shop: StripeShop, events: list[dict[str, Any]]) -> None:
    for event in events:
        resp = await shop.send(event)
        assert resp.status == 200, await resp.text()


async def stored_charge(shop: StripeShop) -> dict[str, Any]:
    resp = await shop.client.get(f"/v1/stripe/charges/{CHARGE}", headers=shop.internal_headers(TENANT))
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


def basil_events(now: int) -> dict[str, dict[str, Any]]:
    return {
        "subscription": _event("customer.subscription.created", subscription(now - 60), BASIL, now - 60),
        "invoice": _event("invoice.paid", basil_invoice(now - 50), BASIL, now - 40),
        "charge": _event("charge.succeeded", charge(now - 45), BASIL, now - 45),
        "invoice_payment": _event("invoice_payment.paid", invoice_payment(now - 40), BASIL, now - 40),
    }


class TestNewerApiVersions:
    @pytest.mark.parametrize(
        "order",
        list(itertools.permutations(("subscription", "invoice", "charge", "invoice_payment"))),
        ids="-".join,
    )
    async def test_the_charge_takes_the_subscription_metadata_in_any_order(
        self, shop: StripeShop, db_read: Any, order: tuple[str, ...]
    ) -> None:
        events = basil_events(int(time.time()))
        await deliver(shop, [events[name] for name in order])
        stored = await stored_charge(shop)
        assert stored["subscription_metadata"] == PLAN
        # The tenant heard of it: the charge's last published state carries the metadata.
        changes = [e for e in outbox_events(await db_read("outbox")) if e["event_type"].startswith("stripe.charge.")]
        assert changes[-1]["data"]["subscription_metadata"] == PLAN

    async def test_a_charge_made_without_a_payment_intent_is_linked_by_its_own_id(self, shop: StripeShop) -> None:
        now = int(time.time())
        link = invoice_payment(now - 40, payment={"type": "charge", "charge": CHARGE})
        await deliver(
            shop,
            [
                _event("customer.subscription.created", subscription(now - 60), BASIL, now - 60),
                _event("charge.succeeded", charge(now - 45, intent=None), BASIL, now - 45),
                _event("invoice.paid", basil_invoice(now - 50), BASIL, now - 40),
                _event("invoice_payment.paid", link, BASIL, now - 40),
            ],
        )
        assert (await stored_charge(shop))["subscription_metadata"] == PLAN

    async def test_an_invoice_listing_its_payments_links_them_too(self, shop: StripeShop) -> None:
        now = int(time.time())
        listed = basil_invoice(
            now - 50, payments={"object": "list", "data": [invoice_payment(now - 40)], "has_more": False}
        )
        await deliver(
            shop,
            [
                _event("charge.succeeded", charge(now - 45), BASIL, now - 45),
                _event("invoice.paid", listed, BASIL, now - 40),
                _event("customer.subscription.created", subscription(now - 60), BASIL, now - 30),
            ],
        )
        assert (await stored_charge(shop))["subscription_metadata"] == PLAN

    async def test_the_invoices_own_copy_serves_before_the_subscription_arrives(self, shop: StripeShop) -> None:
        now = int(time.time())
        copy = basil_invoice(now - 50)
        copy["parent"]["subscription_details"]["metadata"] = {"plan": "invoice copy"}
        await deliver(
            shop,
            [
                _event("invoice_payment.paid", invoice_payment(now - 40), BASIL, now - 40),
                _event("invoice.paid", copy, BASIL, now - 40),
                _event("charge.succeeded", charge(now - 45), BASIL, now - 45),
            ],
        )
        assert (await stored_charge(shop))["subscription_metadata"] == {"plan": "invoice copy"}

    async def test_a_repeated_link_changes_nothing(self, shop: StripeShop, db_read: Any) -> None:
        events = basil_events(int(time.time()))
        await deliver(shop, [events[name] for name in ("subscription", "invoice", "invoice_payment", "charge")])
        before = len(await db_read("outbox"))
        # Stripe's redelivery (a duplicate), then another event carrying the same link.
        await deliver(shop, [events["invoice_payment"]])
        again = events["invoice_payment"] | {"id": events["invoice_payment"]["id"] + "b"}
        await deliver(shop, [again])
        assert len(await db_read("outbox")) == before
        assert (await stored_charge(shop))["subscription_metadata"] == PLAN


class TestOlderApiVersions:
    @pytest.mark.parametrize("charge_first", [True, False], ids=["charge-first", "invoice-first"])
    async def test_the_charge_names_its_invoice(self, shop: StripeShop, charge_first: bool) -> None:
        now = int(time.time())
        sub = _event("customer.subscription.created", subscription(now - 60), LEGACY, now - 60)
        inv = _event("invoice.paid", legacy_invoice(now - 50), LEGACY, now - 40)
        ch = _event("charge.succeeded", charge(now - 45, invoice=INVOICE), LEGACY, now - 45)
        await deliver(shop, [sub, ch, inv] if charge_first else [sub, inv, ch])
        assert (await stored_charge(shop))["subscription_metadata"] == PLAN

    async def test_an_invoices_payment_intent_links_a_charge_that_names_none(self, shop: StripeShop) -> None:
        now = int(time.time())
        await deliver(
            shop,
            [
                _event("charge.succeeded", charge(now - 45), LEGACY, now - 45),
                _event("customer.subscription.created", subscription(now - 60), LEGACY, now - 60),
                _event("invoice.paid", legacy_invoice(now - 50), LEGACY, now - 40),
            ],
        )
        assert (await stored_charge(shop))["subscription_metadata"] == PLAN


async def test_a_charge_of_another_invoice_is_not_relinked(shop: StripeShop) -> None:
    """A charge that names its invoice keeps it: a link to another invoice never replaces it."""
    now = int(time.time())
    other = invoice_payment(now - 40) | {"invoice": "in_1RbOtherInvoice"}
    await deliver(
        shop,
        [
            _event("customer.subscription.created", subscription(now - 60), LEGACY, now - 60),
            _event("charge.succeeded", charge(now - 45, invoice=INVOICE), LEGACY, now - 45),
            _event("invoice_payment.paid", other, BASIL, now - 40),
            _event("invoice.paid", legacy_invoice(now - 50), LEGACY, now - 40),
        ],
    )
    assert (await stored_charge(shop))["subscription_metadata"] == PLAN


class TestAtOnceThroughTheWebhook:
    """Two webhooks at once, the first held open after its projection (a follower waits) until the
    second has finished or waits on a lock: the locks the webhook takes with its inbox claim make the
    second see the first's rows, whichever is held."""

    @pytest.mark.parametrize(
        ("held", "other"),
        [("charge", "invoice_payment"), ("invoice_payment", "charge"), ("subscription", "charge")],
        ids="-held-".join,
    )
    async def test_the_charge_ends_with_its_invoice_and_metadata(
        self, stripe_shop_factory: Any, engine: AsyncEngine, held: str, other: str
    ) -> None:
        gate, projected, armed = asyncio.Event(), asyncio.Event(), asyncio.Event()

        async def hold(_unit: ProvidersUnitOfWork, event: VerifiedStripeEvent) -> None:
            if armed.is_set() and event.object_type == held and not projected.is_set():
                projected.set()
                await gate.wait()

        shop = await stripe_shop_factory(stripe_followers=[hold])
        now = int(time.time())
        events = basil_events(now)
        newer = {**PLAN, "plan": "team"}
        if held == "subscription":
            # Its new metadata against a charge stored at once (the link already recorded).
            await deliver(shop, [events["subscription"], events["invoice"], events["invoice_payment"]])
            events["subscription"] = _event(
                "customer.subscription.updated", subscription(now - 60) | {"metadata": newer}, BASIL, now - 30
            )
        else:
            await deliver(shop, [events["subscription"], events["invoice"]])
        armed.set()
        first = asyncio.create_task(shop.send(events[held]))
        await asyncio.wait_for(projected.wait(), timeout=10)
        second = asyncio.create_task(shop.send(events[other]))
        try:
            await finished_or_waiting_on_a_lock(engine, second)
        finally:
            gate.set()
        for task in (first, second):
            resp = await asyncio.wait_for(task, timeout=10)
            assert resp.status == 200, await resp.text()
        stored = await stored_charge(shop)
        wanted = newer if held == "subscription" else PLAN
        assert (stored["stripe_object"].get("id"), stored["subscription_metadata"]) == (CHARGE, wanted)
        [row] = [r for r in await _charges(engine)]
        assert row == INVOICE


async def _charges(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT invoice FROM stripe_objects WHERE object = 'charge'"))
        return [r[0] for r in rows]
