"""The reads of ``GET /internal/statements``: keyset pages of one account's records of a period, each
page its own short read (no transaction is held while the providers are asked)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from providers_svc.db.models import ProviderTransactionRow, SandboxChargeRow
from providers_svc.db.payme import PaymeTransactionRow
from providers_svc.db.repositories import to_transaction
from providers_svc.domain.transactions import Transaction

# The position after which the next page starts: (time, id) of the last row of the page before.
Cursor = tuple[Any, str] | None


async def account_transactions(
    session: AsyncSession, account_id: str, start: datetime, end: datetime, after: Cursor, limit: int
) -> list[Transaction]:
    """The account's transactions started (a payer was sent to the provider) in ``[start, end)``, in
    (created_at, id) order."""
    t = ProviderTransactionRow
    stmt = select(t).where(
        t.account_id == account_id, t.redirect_url.is_not(None), t.created_at >= start, t.created_at < end
    )
    if after is not None:
        stmt = stmt.where(tuple_(t.created_at, t.id) > tuple_(*after))
    rows = (await session.execute(stmt.order_by(t.created_at, t.id).limit(limit))).scalars().all()
    return [to_transaction(row) for row in rows]


async def sandbox_charges(
    session: AsyncSession, start: datetime, end: datetime, after: Cursor, limit: int
) -> list[tuple[SandboxChargeRow, ProviderTransactionRow]]:
    """The sandbox bank's decisions made in ``[start, end)`` with their transactions, in (created_at,
    transaction id) order."""
    c, t = SandboxChargeRow, ProviderTransactionRow
    stmt = select(c, t).join(t, t.id == c.transaction_id).where(c.created_at >= start, c.created_at < end)
    if after is not None:
        stmt = stmt.where(or_(c.created_at > after[0], and_(c.created_at == after[0], c.transaction_id > after[1])))
    rows = (await session.execute(stmt.order_by(c.created_at, c.transaction_id).limit(limit))).all()
    return [(row[0], row[1]) for row in rows]


async def payme_transactions(
    session: AsyncSession, account_id: str, start_ms: int, end_ms: int, after: Cursor, limit: int
) -> Sequence[PaymeTransactionRow]:
    """The account's Payme transactions with ``start_ms <= time <= end_ms`` (GetStatement's rule), in
    (time, Payme id) order, as GetStatement lists them."""
    p = PaymeTransactionRow
    stmt = select(p).where(p.account_id == account_id, p.time >= start_ms, p.time <= end_ms)
    if after is not None:
        stmt = stmt.where(tuple_(p.time, p.payme_id) > tuple_(*after))
    return (await session.execute(stmt.order_by(p.time, p.payme_id).limit(limit))).scalars().all()
