"""Dead letters of the embedded mode, kept on disk: outbox rows the relay marked because a consumer gave
up on their event (``OutboxRelay._mark_dead``). Listing reads them; replaying unmarks them, keeping the
queues that gave up (``dead_queues``) as the only ones the relay publishes the event to again."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from billing_runtime.bus.letters import DeadLetter


async def list_outbox_dead_letters(engine: AsyncEngine, table: Table) -> list[DeadLetter]:
    """One entry per (event, queue that gave up on it), oldest first."""
    t = table
    query = (
        select(t.c.event_id, t.c.routing_key, t.c.dead_queues, t.c.dead_at, t.c.dead_reason)
        .where(t.c.dead_at.is_not(None))
        .order_by(t.c.id)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [
        letter
        for row in rows
        for letter in _letters(row.event_id, row.routing_key, row.dead_queues, row.dead_at, row.dead_reason)
    ]


def _letters(
    event_id: str, routing_key: str, queues: str | None, dead_at: datetime | None, reasons: str | None
) -> list[DeadLetter]:
    why = dict(_split_reason(part) for part in (reasons or "").split("; ") if part)
    return [
        DeadLetter(
            event_id=event_id,
            routing_key=routing_key,
            queue=queue,
            dead_at=dead_at,
            reason=why.get(queue, reasons or ""),
            deliveries=None,
        )
        for queue in (queues or "").split(",")
        if queue
    ]


def _split_reason(part: str) -> tuple[str, str]:
    queue, _, reason = part.partition(": ")
    return queue, reason


async def replay_outbox_dead_letters(engine: AsyncEngine, table: Table, ids: set[str] | None) -> list[DeadLetter]:
    """Unmark the chosen rows (``ids``; None = all) in one transaction: the relay's next pass (within
    its poll interval) publishes each to the queues that gave up on it, and only those. A row unmarked
    is no longer listed, so a second replay finds nothing: each is replayed once."""
    t = table
    where = [t.c.dead_at.is_not(None)]
    if ids is not None:
        where.append(t.c.event_id.in_(sorted(ids)))
    async with engine.begin() as conn:
        rows = (
            await conn.execute(
                update(t)
                .where(*where)
                .values(dead_at=None, dead_reason=None, claimed_until=None, claim_token=None)
                .returning(t.c.event_id, t.c.routing_key, t.c.dead_queues, t.c.dead_at, t.c.dead_reason)
            )
        ).all()
    # RETURNING gives the new values; the listing of what was replayed needs only ids, keys and queues.
    return [letter for row in rows for letter in _letters(row.event_id, row.routing_key, row.dead_queues, None, None)]


async def outbox_dead_letter_stats(engine: AsyncEngine, table: Table) -> dict[str, tuple[int, datetime]]:
    """Per queue: how many events it dead-lettered that this outbox keeps, and when the oldest died."""
    t = table
    async with engine.connect() as conn:
        rows = (await conn.execute(select(t.c.dead_queues, t.c.dead_at).where(t.c.dead_at.is_not(None)))).all()
    stats: dict[str, tuple[int, datetime]] = {}
    for queues, dead_at in rows:
        for queue in (queues or "").split(","):
            if not queue:
                continue
            count, oldest = stats.get(queue, (0, dead_at))
            stats[queue] = (count + 1, min(oldest, dead_at))
    return stats
