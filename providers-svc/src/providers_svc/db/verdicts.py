"""The reads of ``GET /internal/verdicts``: keyset pages of the verdicts we hold, one kind at a time,
each page its own short read.

Every page is ordered by a key that never changes once the row exists (a primary key; our ids are
time-ordered, so rows inserted while someone pages land after the cursor), never by a time that moves
with updates: a row updated between two pages is not seen twice, nor skipped because it moved."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import String, and_, exists, func, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from providers_svc.db.models import ProviderEventRow, ProviderTransactionRow
from providers_svc.db.payme import PaymeReversalRow
from providers_svc.db.refunds import ProviderRefundRow
from providers_svc.db.stripe import StripeIntentRow
from providers_svc.db.stripe_objects import StripeObjectRow
from providers_svc.domain.refunds import RefundStatus
from providers_svc.domain.transactions import TransactionStatus

_FINAL = (TransactionStatus.SUCCEEDED.value, TransactionStatus.FAILED.value)
_VERDICTS = (RefundStatus.PENDING.value, RefundStatus.SUCCEEDED.value, RefundStatus.FAILED.value)


@dataclass(frozen=True)
class SettledTransaction:
    row: ProviderTransactionRow
    # The verdict came from reconciliation's sync (its inbox row ``status_check:<ptx>:<status>``).
    by_status_check: bool


async def settled_transactions(session: AsyncSession, after: str | None, limit: int) -> list[SettledTransaction]:
    """Transactions with a final outcome (each was published as ``provider.payment.succeeded|failed``:
    only ``queue_outcome`` moves one there), in id order."""
    t, e = ProviderTransactionRow, ProviderEventRow
    status_check = exists().where(
        e.provider == t.provider,
        e.external_id == literal("status_check:", String) + t.id + literal(":", String) + t.status,
        e.result == "applied",
    )
    stmt = select(t, status_check).where(t.status.in_(_FINAL))
    if after is not None:
        stmt = stmt.where(t.id > after)
    rows = (await session.execute(stmt.order_by(t.id).limit(limit))).all()
    return [SettledTransaction(row[0], bool(row[1])) for row in rows]


async def published_refunds(session: AsyncSession, after: str | None, limit: int) -> Sequence[ProviderRefundRow]:
    """Our refunds whose current verdict was published (``published_status`` is written with the
    event), in id order. A verdict not yet published is left out: the sync publishes it, and that event
    reaches reconciliation as any other."""
    r = ProviderRefundRow
    stmt = select(r).where(r.status.in_(_VERDICTS), r.published_status == r.status)
    if after is not None:
        stmt = stmt.where(r.id > after)
    return (await session.execute(stmt.order_by(r.id).limit(limit))).scalars().all()


async def payme_reversals(
    session: AsyncSession, after: str | None, limit: int
) -> list[tuple[PaymeReversalRow, ProviderTransactionRow]]:
    """Payme's cancels after perform (its refunds), with their transactions, in id order."""
    v, t = PaymeReversalRow, ProviderTransactionRow
    stmt = select(v, t).join(t, t.id == v.provider_transaction_id)
    if after is not None:
        stmt = stmt.where(v.id > after)
    rows = (await session.execute(stmt.order_by(v.id).limit(limit))).all()
    return [(row[0], row[1]) for row in rows]


StripeCursor = tuple[str, str] | None


async def stripe_started_refunds(
    session: AsyncSession, after: StripeCursor, limit: int
) -> list[tuple[StripeObjectRow, ProviderTransactionRow]]:
    """Stripe's refunds (their newest state projected) of our transactions that are not ours (no
    ``provider_refunds`` row of that transaction named by their ``metadata.refund_id``): made in Stripe's
    dashboard or by another integration, in (account, Stripe id) order."""
    o, i, t, r = StripeObjectRow, StripeIntentRow, ProviderTransactionRow, ProviderRefundRow
    ours = exists().where(r.id == o.object_metadata["refund_id"].astext, r.provider_transaction_id == t.id)
    stmt = (
        select(o, t)
        .join(i, i.payment_intent_id == o.data["payment_intent"].astext)
        .join(t, t.id == i.transaction_id)
        .where(and_(o.object == "refund", o.deleted.is_(False), ~ours))
    )
    if after is not None:
        stmt = stmt.where(tuple_(o.account_id, o.stripe_id) > tuple_(*after))
    rows = (await session.execute(stmt.order_by(o.account_id, o.stripe_id).limit(limit))).all()
    return [(row[0], row[1]) for row in rows]


async def published_disputes(
    session: AsyncSession, published: str, after: str | None, limit: int
) -> list[tuple[ProviderEventRow, ProviderTransactionRow]]:
    """Every Stripe dispute event that was published as ``provider.dispute.updated`` (its inbox row's
    result is ``published``, written with the event in one unit of work), with its transaction, in
    inbox id order: the order providers-svc took them in.

    The row's account (``external_id`` is ``<account id>/<Stripe event id>``) must be the transaction's,
    as the webhook required (``locked_transaction``): a state is served under the tenant and account
    it was published for, never another's. A walk reads the inbox once, by its primary key."""
    e, t = ProviderEventRow, ProviderTransactionRow
    stmt = (
        select(e, t)
        .join(t, t.id == e.transaction_id)
        .where(
            e.provider == "stripe",
            e.result == published,
            func.split_part(e.external_id, "/", 1) == t.account_id,
        )
    )
    if after is not None:
        stmt = stmt.where(e.id > after)
    rows = (await session.execute(stmt.order_by(e.id).limit(limit))).all()
    return [(row[0], row[1]) for row in rows]
