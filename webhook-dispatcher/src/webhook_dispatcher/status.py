"""What webhook-dispatcher's ``GET /internal/status`` shows (``billing_runtime.status``): its queue of
domain events, its outbox, its processes, and the delivery backlog (the ``webhook_backlog`` gauges'
figures, read by the API process from the database)."""

from __future__ import annotations

from typing import Any

from billing_contracts.envelope import utcnow
from billing_runtime.plumbing import Plumbing
from billing_runtime.status import StatusSource
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from webhook_dispatcher.db.models import Delivery, heartbeats, outbox
from webhook_dispatcher.events.consumers import EVENT_BINDING_KEYS, EVENTS_QUEUE
from webhook_dispatcher.settings import Settings


async def delivery_backlog(engine: AsyncEngine) -> dict[str, Any]:
    """Pending deliveries (due now, or waiting for a retry's time), the age of the oldest due one, and
    those leased by a worker now (queued or in flight there)."""
    now = utcnow()
    pending = Delivery.status == "pending"
    due = pending & (Delivery.next_attempt_at <= now)
    query = select(
        func.count().filter(pending),
        func.count().filter(due),
        func.min(Delivery.next_attempt_at).filter(due),
        func.count().filter(pending & (Delivery.claimed_until > now)),
    ).where(pending)
    async with engine.connect() as conn:
        total, due_count, oldest_due, leased = (await conn.execute(query)).one()
    return {
        "pending": int(total),
        "due": int(due_count),
        "oldest_due_age_seconds": 0.0 if oldest_due is None else round((now - oldest_due).total_seconds(), 3),
        "leased": int(leased),
    }


def status_source(settings: Settings, plumbing: Plumbing) -> StatusSource:
    return StatusSource(
        service="webhooks",
        plumbing=plumbing,
        bus_url=settings.bus_url,
        queues={EVENTS_QUEUE: EVENT_BINDING_KEYS},
        heartbeats=heartbeats,
        outbox=outbox,
        sections={"deliveries": delivery_backlog},
        heartbeat_interval=settings.heartbeat_interval,
    )
