"""Queries of the tenant event log (``GET /v1/events``) and of its sequencer (see
``services/event_log.py`` for why the log is paged by a position given after commit)."""

from __future__ import annotations

import functools

from sqlalchemy import ColumnClause, String, TextClause, func, literal_column, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from payments_svc.db.models import TenantEvent

# The payment an event is about: payment, refund and dispute events all carry ``data.payment``.
PAYMENT_OF_EVENT: ColumnClause[str] = literal_column("(data -> 'payment' ->> 'id')", String())


class EventRepository:
    def __init__(self, session: AsyncSession, tenant_id: str) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def position_of(self, event_id: str) -> int | None:
        """Where the event sits in the log (None when unknown, or not placed yet)."""
        stmt = select(TenantEvent.position).where(TenantEvent.tenant_id == self.tenant_id, TenantEvent.id == event_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def list_after(
        self, position: int, *, limit: int, type_: str | None, payment_id: str | None = None
    ) -> list[TenantEvent]:
        """The placed events after ``position``, in log order (of one payment, when given)."""
        order = TenantEvent.position
        stmt = select(TenantEvent).where(TenantEvent.tenant_id == self.tenant_id, order > position)
        if type_ is not None:
            stmt = stmt.where(TenantEvent.type == type_)
        if payment_id is not None:
            # The expression of ix_events_tenant_payment, written the same way so the index is used.
            stmt = stmt.where(PAYMENT_OF_EVENT.op("=")(payment_id))
        stmt = stmt.order_by(order).limit(limit)
        return list((await self.session.execute(stmt)).scalars())


class PlatformEventRepository:
    """Every tenant's log in one order (``GET /internal/events``, for reconciliation-svc's rebuild).
    Positions come from one sequence shared by all tenants, so the order of each tenant's log is
    this order restricted to the tenant, and the same promise holds: nothing is placed behind a
    position a reader has already passed."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def position_of(self, event_id: str) -> int | None:
        stmt = select(TenantEvent.position).where(TenantEvent.id == event_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def list_after(self, position: int, *, limit: int) -> list[TenantEvent]:
        stmt = (
            select(TenantEvent)
            .where(TenantEvent.position.is_not(None), TenantEvent.position > position)
            .order_by(TenantEvent.position)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())


# Serializes the sequencer passes of every process (pg_advisory_xact_lock key: "evlog" in ASCII).
_SEQUENCER_LOCK = 0x65766C6F67


async def place_events(session: AsyncSession, limit: int) -> int:
    """Give the oldest unplaced events of the log their positions, in seq order; how many.

    Under a lock held until the caller commits, so passes run one at a time and each takes its
    positions after the one before it committed: a position becomes visible only after every lower
    one (see ``services/event_log.py``)."""
    await session.execute(select(func.pg_advisory_xact_lock(_SEQUENCER_LOCK)))
    result = await session.execute(_place(), {"limit": limit})
    return int(result.rowcount)  # type: ignore[attr-defined]


@functools.cache
def _place() -> TextClause:
    # nextval in the outer query of an ordered one is evaluated after the sort, so positions follow seq.
    return text(
        "UPDATE events SET position = placed.position FROM ("
        "  SELECT seq, nextval('events_position_seq') AS position FROM ("
        "    SELECT seq FROM events WHERE position IS NULL ORDER BY seq LIMIT :limit FOR UPDATE"
        "  ) AS due ORDER BY seq"
        ") AS placed WHERE events.seq = placed.seq"
    )
