"""A charge and the ``invoice_payment`` linking its PaymentIntent to an invoice, projected by two
webhooks at once: whichever commits first, the charge ends up with its invoice and the subscription
metadata mirrored onto it.

Each interleaving is made to happen, not hoped for: the first event's transaction is held open after
its writes, the second event runs meanwhile (under READ COMMITTED it cannot see the first's rows), and
the first commits only once the second has finished or is waiting on a lock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from providers_svc.domain.stripe_events import VerifiedStripeEvent
from providers_svc.services.stripe_projections import project_event
from providers_svc.services.uow import ProvidersUnitOfWork
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from .conftest import T0, Project, Rows, charge, event, invoice, subscription

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


async def _waiting_or_done(engine: AsyncEngine, task: asyncio.Task[None]) -> None:
    """Until ``task`` has finished or its transaction waits on a lock of another one."""
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    for _ in range(500):
        if task.done():
            return
        async with engine.connect() as conn:
            if (await conn.execute(waiting)).scalar_one():
                return
        await asyncio.sleep(0.01)
    raise AssertionError("the second event neither finished nor waited")


async def _race(
    engine: AsyncEngine,
    new_uow: Callable[[], ProvidersUnitOfWork],
    project: Project,
    first: VerifiedStripeEvent,
    second: VerifiedStripeEvent,
) -> None:
    """``first`` projected and left uncommitted while ``second`` runs; then both commit."""
    async with new_uow() as held:
        await project_event(held, first)
        other = asyncio.create_task(project(second))
        try:
            await _waiting_or_done(engine, other)
            await held.commit()
        except BaseException:
            other.cancel()
            raise
    await asyncio.wait_for(other, timeout=10)


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
        await _race(engine, new_uow, project, first, second)
        [row] = await stored(object="charge")
        assert (row["invoice"], row["subscription_metadata"]) == (INVOICE, PLAN)
