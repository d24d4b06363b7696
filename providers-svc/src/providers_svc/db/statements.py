"""The reads of ``GET /internal/statements``: keyset pages of one account's records of a period, each
page its own short read (no transaction is held while the providers are asked)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from providers_svc.db.models import ProviderTransactionRow, SandboxChargeRow
from providers_svc.db.payme import PaymeReversalRow, PaymeTransactionRow
from providers_svc.db.refunds import ProviderRefundRow, to_refund
from providers_svc.db.repositories import to_transaction
from providers_svc.domain.refunds import Refund, RefundStatus
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


async def answered_refunds(
    session: AsyncSession,
    provider: str,
    account_id: str | None,
    start: datetime,
    end: datetime,
    after: Cursor,
    limit: int,
) -> list[tuple[Refund, Transaction]]:
    """The refunds of the account (``None``: the sandbox's, which have no account) that the provider
    answered, last changed in ``[start, end)``, with their transactions, in (updated_at, id) order. A
    refund still ``requested`` is left out: the provider may never have heard of it."""
    r, t = ProviderRefundRow, ProviderTransactionRow
    account = r.account_id.is_(None) if account_id is None else r.account_id == account_id
    stmt = (
        select(r, t)
        .join(t, t.id == r.provider_transaction_id)
        .where(
            r.provider == provider,
            account,
            r.status != RefundStatus.REQUESTED.value,
            r.updated_at >= start,
            r.updated_at < end,
        )
    )
    if after is not None:
        stmt = stmt.where(tuple_(r.updated_at, r.id) > tuple_(*after))
    rows = (await session.execute(stmt.order_by(r.updated_at, r.id).limit(limit))).all()
    return [(to_refund(row[0]), to_transaction(row[1])) for row in rows]


async def payme_reversals(
    session: AsyncSession, account_id: str, start_ms: int, end_ms: int, after: Cursor, limit: int
) -> Sequence[PaymeReversalRow]:
    """The account's performed Payme transactions that Payme cancelled (its refunds) with
    ``start_ms <= cancel_time <= end_ms``, in (cancel_time, Payme id) order."""
    v = PaymeReversalRow
    stmt = select(v).where(v.account_id == account_id, v.cancel_time >= start_ms, v.cancel_time <= end_ms)
    if after is not None:
        stmt = stmt.where(tuple_(v.cancel_time, v.payme_id) > tuple_(*after))
    return (await session.execute(stmt.order_by(v.cancel_time, v.payme_id).limit(limit))).scalars().all()
