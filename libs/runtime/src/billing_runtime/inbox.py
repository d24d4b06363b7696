"""Inbox: remember every consumed message id so a redelivery is acknowledged and ignored."""

from __future__ import annotations

from billing_contracts.envelope import utcnow
from sqlalchemy import Column, MetaData, String, Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from billing_runtime.db import UTCDateTime
from billing_runtime.writes import InsertRows


def inbox_table(metadata: MetaData) -> Table:
    """The ``inbox`` table of a service: one row per (consumer, message id) ever processed."""
    return Table(
        "inbox",
        metadata,
        Column("consumer", String(64), primary_key=True),
        Column("message_id", String(128), primary_key=True),
        Column("received_at", UTCDateTime(), nullable=False),
    )


async def record_once(session: AsyncSession, table: Table, consumer: str, message_id: str) -> bool:
    """Insert the id inside the caller's transaction; False if it was already there (a duplicate)."""
    values = inbox_row(table, consumer, message_id).rows[0]
    stmt = pg_insert(table).values(**values).on_conflict_do_nothing()
    result = await session.execute(stmt)
    return bool(result.rowcount)  # type: ignore[attr-defined]


def inbox_row(table: Table, consumer: str, message_id: str) -> InsertRows:
    """The inbox row for a message, as the guard of ``UnitOfWork.commit_unless_exists``: the unit's
    writes commit with it only if the message was never processed."""
    return InsertRows(table, [{"consumer": consumer, "message_id": message_id, "received_at": utcnow()}])
