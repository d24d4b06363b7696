"""The follower inside the webhook's unit of work: its writes and events commit with the event's inbox
row, and a duplicate event id (the guard finds the row) leaves nothing of them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from billing_contracts.envelope import utcnow
from providers_svc.db.repositories import IncomingEvent, provider_event_insert
from providers_svc.domain.stripe_events import VerifiedStripeEvent
from providers_svc.services.stripe_projections import project_event
from providers_svc.services.uow import ProvidersUnitOfWork

from .conftest import T0, Published, Rows, charge, event

pytestmark = pytest.mark.postgres


async def deliver(new_uow: Callable[[], ProvidersUnitOfWork], verified: VerifiedStripeEvent) -> bool:
    """As ``POST /billing/stripe`` may: the followers, then one commit guarded by the inbox row."""
    incoming = IncomingEvent("stripe", verified.event_id, verified.type, None, "{}")
    async with new_uow() as uow:
        await project_event(uow, verified)
        return await uow.commit_unless_exists(
            provider_event_insert(f"pev_{verified.event_id}", incoming, utcnow(), None)
        )


async def test_a_duplicate_event_id_leaves_nothing_of_the_second_delivery(
    new_uow: Callable[[], ProvidersUnitOfWork], stored: Rows, published: Published
) -> None:
    first = event(charge(status="pending"), "charge.pending", created=T0)
    assert await deliver(new_uow, first) is True
    # The same event id with another body (never from Stripe, but the inbox must hold either way).
    replayed = event(charge(status="succeeded"), "charge.pending", created=T0 + 5, event_id=first.event_id)
    assert await deliver(new_uow, replayed) is False
    [row] = await stored()
    assert (row["status"], row["sequence"]) == ("pending", 1)
    assert [key for key, _ in await published()] == ["providers.stripe.charge.created.v1"]


async def test_a_unit_left_without_commit_writes_nothing(
    new_uow: Callable[[], ProvidersUnitOfWork], stored: Rows, published: Published
) -> None:
    # The webhook failed after its followers ran: the unit rolls back on leaving.
    async with new_uow() as uow:
        await project_event(uow, event(charge(), "charge.succeeded"))
    assert await stored() == []
    assert await published() == []
