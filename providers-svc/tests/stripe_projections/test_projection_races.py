"""Two Stripe events that meet in the projections, handled by two webhooks at once: whichever commits
first, the rows end as if they had come one after the other. A charge and the ``invoice_payment``
linking it to its invoice; a subscription and its invoice; an invoice and its charge; an invoice and
its link; a subscription and a link or a charge of its invoice (``domain/stripe_locks.py``). Each
interleaving is made to happen (``races.py``)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import pytest
from providers_svc.services.uow import ProvidersUnitOfWork
from sqlalchemy.ext.asyncio import AsyncEngine

from .conftest import T0, Project, Rows, charge, event, invoice, subscription
from .races import race

pytestmark = pytest.mark.postgres

PLAN = {"tenant_id": "ten_aaaaaaaaaaaaaaaa", "plan": "pro"}
INVOICE, INTENT = "in_1QxInvoice0001", "pi_3QxIntent0001"


def basil_invoice() -> dict[str, Any]:
    # API 2025-03-31: the invoice names no payment; only the invoice_payment links them.
    obj = invoice(status="paid", amount_paid=5000, created=T0 + 1)
    del obj["charge"], obj["payment_intent"]
    return obj


def basil_charge() -> dict[str, Any]:
    obj = charge(created=T0 + 2)
    del obj["invoice"]
    return obj


def invoice_payment() -> dict[str, Any]:
    return {
        "id": "inpay_1QxPayment01",
        "object": "invoice_payment",
        "amount_paid": 5000,
        "created": T0 + 3,
        "currency": "usd",
        "invoice": INVOICE,
        "is_default": True,
        "livemode": False,
        "payment": {"type": "payment_intent", "payment_intent": INTENT},
        "status": "paid",
    }


class TestChargeAndLinkAtOnce:
    @pytest.mark.parametrize("link_first", [False, True], ids=["charge-held", "link-held"])
    async def test_the_charge_gets_its_invoice_and_metadata_in_either_interleaving(
        self,
        engine: AsyncEngine,
        new_uow: Callable[[], ProvidersUnitOfWork],
        project: Project,
        stored: Rows,
        link_first: bool,
    ) -> None:
        await project(event(subscription(metadata=PLAN), "customer.subscription.created", created=T0))
        await project(event(basil_invoice(), "invoice.paid", created=T0 + 1))
        paid = event(basil_charge(), "charge.succeeded", created=T0 + 2)
        link = event(invoice_payment(), "invoice_payment.paid", created=T0 + 3)
        first, second = (link, paid) if link_first else (paid, link)
        await race(engine, new_uow, project, first, second)
        [row] = await stored(object="charge")
        assert (row["invoice"], row["subscription_metadata"]) == (INVOICE, PLAN)


PLAN2 = {"tenant_id": "ten_aaaaaaaaaaaaaaaa", "plan": "team"}


def _held(first_held: bool, a: Any, b: Any) -> tuple[Any, Any]:
    return (a, b) if first_held else (b, a)


HELD = pytest.mark.parametrize("first_held", [True, False], ids=["first-held", "second-held"])


class TestMirroringAtOnce:
    """Without the shared lock each of these leaves the copy missing or stale (each fails so)."""

    @HELD
    async def test_a_subscription_and_its_first_invoice(
        self,
        engine: AsyncEngine,
        new_uow: Callable[[], ProvidersUnitOfWork],
        project: Project,
        stored: Rows,
        first_held: bool,
    ) -> None:
        created = event(subscription(metadata=PLAN), "customer.subscription.created", created=T0)
        opened = event(invoice(created=T0 + 1), "invoice.created", created=T0 + 1)
        await race(engine, new_uow, project, *_held(first_held, created, opened))
        [row] = await stored(object="invoice")
        assert row["subscription_metadata"] == PLAN

    @HELD
    async def test_an_invoice_and_a_charge_naming_it(
        self,
        engine: AsyncEngine,
        new_uow: Callable[[], ProvidersUnitOfWork],
        project: Project,
        stored: Rows,
        first_held: bool,
    ) -> None:
        await project(event(subscription(metadata=PLAN), "customer.subscription.created", created=T0))
        paid = event(invoice(status="paid", amount_paid=5000, created=T0 + 1), "invoice.paid", created=T0 + 1)
        succeeded = event(charge(invoice=INVOICE, created=T0 + 2), "charge.succeeded", created=T0 + 2)
        await race(engine, new_uow, project, *_held(first_held, paid, succeeded))
        [row] = await stored(object="charge")
        assert (row["invoice"], row["subscription_metadata"]) == (INVOICE, PLAN)

    @HELD
    async def test_an_invoice_and_its_link_of_a_stored_charge(
        self,
        engine: AsyncEngine,
        new_uow: Callable[[], ProvidersUnitOfWork],
        project: Project,
        stored: Rows,
        first_held: bool,
    ) -> None:
        await project(event(subscription(metadata=PLAN), "customer.subscription.created", created=T0))
        await project(event(basil_charge(), "charge.succeeded", created=T0 + 2))
        paid = event(basil_invoice(), "invoice.paid", created=T0 + 1)
        link = event(invoice_payment(), "invoice_payment.paid", created=T0 + 3)
        await race(engine, new_uow, project, *_held(first_held, paid, link))
        [row] = await stored(object="charge")
        assert (row["invoice"], row["subscription_metadata"]) == (INVOICE, PLAN)

    @HELD
    async def test_a_subscriptions_new_metadata_and_a_link_of_its_invoices_charge(
        self,
        engine: AsyncEngine,
        new_uow: Callable[[], ProvidersUnitOfWork],
        project: Project,
        stored: Rows,
        first_held: bool,
    ) -> None:
        await project(event(subscription(metadata=PLAN), "customer.subscription.created", created=T0))
        await project(event(basil_invoice(), "invoice.paid", created=T0 + 1))
        await project(event(basil_charge(), "charge.succeeded", created=T0 + 2))
        updated = event(subscription(metadata=PLAN2), "customer.subscription.updated", created=T0 + 10)
        link = event(invoice_payment(), "invoice_payment.paid", created=T0 + 3)
        await race(engine, new_uow, project, *_held(first_held, updated, link))
        [row] = await stored(object="charge")
        assert (row["invoice"], row["subscription_metadata"]) == (INVOICE, PLAN2)

    @HELD
    async def test_a_subscriptions_new_metadata_and_its_invoices_charge(
        self,
        engine: AsyncEngine,
        new_uow: Callable[[], ProvidersUnitOfWork],
        project: Project,
        stored: Rows,
        first_held: bool,
    ) -> None:
        await project(event(subscription(metadata=PLAN), "customer.subscription.created", created=T0))
        await project(event(basil_invoice(), "invoice.paid", created=T0 + 1))
        await project(event(invoice_payment(), "invoice_payment.paid", created=T0 + 3))
        updated = event(subscription(metadata=PLAN2), "customer.subscription.updated", created=T0 + 10)
        succeeded = event(basil_charge(), "charge.succeeded", created=T0 + 2)
        await race(engine, new_uow, project, *_held(first_held, updated, succeeded))
        [row] = await stored(object="charge")
        assert (row["invoice"], row["subscription_metadata"]) == (INVOICE, PLAN2)


class TestManyAtOnce:
    @pytest.mark.parametrize("seed", range(4))
    async def test_a_billing_cycles_events_all_at_once_converge_without_deadlock(
        self, project: Project, stored: Rows, seed: int
    ) -> None:
        # Every event of a renewal delivered at once, in a different order each time: each takes its
        # locks in the one global order, so none waits on another in a cycle (PostgreSQL would abort
        # one with a deadlock error), and the rows end as if they had come one by one.
        events = [
            event(subscription(metadata=PLAN), "customer.subscription.created", created=T0),
            event(basil_invoice(), "invoice.created", created=T0 + 1),
            event(basil_invoice(), "invoice.paid", created=T0 + 1),
            event(basil_charge(), "charge.succeeded", created=T0 + 2),
            event(invoice_payment(), "invoice_payment.paid", created=T0 + 3),
            event(subscription(metadata=PLAN2), "customer.subscription.updated", created=T0 + 10),
        ]
        random.Random(seed).shuffle(events)
        await asyncio.wait_for(asyncio.gather(*(project(e) for e in events)), timeout=30)
        [row] = await stored(object="charge")
        assert (row["invoice"], row["subscription_metadata"]) == (INVOICE, PLAN2)
        [row] = await stored(object="invoice")
        assert row["subscription_metadata"] == PLAN2
