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


def _sub(metadata: dict[str, str], type_: str = "customer.subscription.created", at: int = T0) -> Any:
    return event(subscription(metadata=metadata), type_, created=at)


def _renewed() -> Any:
    return _sub(PLAN2, "customer.subscription.updated", T0 + 10)


def _paid_invoice() -> Any:
    return event(invoice(status="paid", amount_paid=5000, created=T0 + 1), "invoice.paid", created=T0 + 1)


def _basil_invoice() -> Any:
    return event(basil_invoice(), "invoice.paid", created=T0 + 1)


def _basil_charge() -> Any:
    return event(basil_charge(), "charge.succeeded", created=T0 + 2)


def _link() -> Any:
    return event(invoice_payment(), "invoice_payment.paid", created=T0 + 3)


# (stored before, the two events raced, what the charge ends with; None: the invoice's metadata).
MIRRORING_RACES = {
    "subscription-and-its-first-invoice": (
        [],
        (_sub(PLAN), event(invoice(created=T0 + 1), "invoice.created", created=T0 + 1)),
        None,
    ),
    "invoice-and-a-charge-naming-it": (
        [_sub(PLAN)],
        (_paid_invoice(), event(charge(invoice=INVOICE, created=T0 + 2), "charge.succeeded", created=T0 + 2)),
        PLAN,
    ),
    "invoice-and-its-link-of-a-stored-charge": ([_sub(PLAN), _basil_charge()], (_basil_invoice(), _link()), PLAN),
    "new-subscription-metadata-and-a-link": (
        [_sub(PLAN), _basil_invoice(), _basil_charge()],
        (_renewed(), _link()),
        PLAN2,
    ),
    "new-subscription-metadata-and-a-linked-charge": (
        [_sub(PLAN), _basil_invoice(), _link()],
        (_renewed(), _basil_charge()),
        PLAN2,
    ),
}


class TestMirroringAtOnce:
    """Without the shared lock each of these leaves the copy missing or stale (each fails so)."""

    @pytest.mark.parametrize("first_held", [True, False], ids=["first-held", "second-held"])
    @pytest.mark.parametrize("name", list(MIRRORING_RACES))
    async def test_the_copy_ends_as_if_one_came_after_the_other(
        self,
        engine: AsyncEngine,
        new_uow: Callable[[], ProvidersUnitOfWork],
        project: Project,
        stored: Rows,
        name: str,
        first_held: bool,
    ) -> None:
        before, (a, b), charge_metadata = MIRRORING_RACES[name]
        for earlier in before:
            await project(earlier)
        await race(engine, new_uow, project, *((a, b) if first_held else (b, a)))
        if charge_metadata is None:
            [row] = await stored(object="invoice")
            assert row["subscription_metadata"] == PLAN
        else:
            [row] = await stored(object="charge")
            assert (row["invoice"], row["subscription_metadata"]) == (INVOICE, charge_metadata)


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
