"""Two Stripe events projected at once, each interleaving made to happen, not hoped for: the first
event's transaction is held open after its writes, the second runs meanwhile (under READ COMMITTED it
cannot see the first's rows), and the first commits only once the second has finished or is waiting on
a lock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from billing_runtime.testing import finished_or_waiting_on_a_lock
from providers_svc.domain.stripe_events import VerifiedStripeEvent
from providers_svc.services.stripe_projections import project_event
from providers_svc.services.uow import ProvidersUnitOfWork
from sqlalchemy.ext.asyncio import AsyncEngine

from .conftest import Project


async def race(
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
            await finished_or_waiting_on_a_lock(engine, other)
            await held.commit()
        except BaseException:
            other.cancel()
            raise
    await asyncio.wait_for(other, timeout=10)
