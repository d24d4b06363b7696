"""The projection's writes: one guarded upsert per event (REC-2, REC-3) and the emptying ``rebuild``
starts from. Each statement decides on its own, inside the caller's transaction, whether what it
carries is newer than what is stored, so events may arrive in any order, any number of times."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from billing_contracts.events import PaymentSnapshot, ProviderPaymentOutcome, ProviderRefund, RefundSnapshot
from billing_runtime.db import table_of
from sqlalchemy import ColumnElement, Table, Update, and_, case, func, null, or_, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import Insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from reconciliation_svc.db.models import ReconPayment, ReconProviderRefund, ReconProviderTransaction, ReconRefund

# The statuses in which a payment waits for its provider's word, on the janitor's clock: an AUTHORIZED
# (manual-capture) payment too, whose capture at the provider could have been lost between the
# provider's answer and our commit (the sync then records it; a hold still held is asked again daily).
PENDING_PAYMENTS = frozenset({"PROVIDER_PENDING", "AUTHORIZED"})
PENDING_REFUND = "PENDING"
# The statuses of a payment that took the money (succeeded_at is when we first saw one of them).
_PAID = frozenset({"SUCCEEDED", "PARTIALLY_REFUNDED", "REFUNDED"})
_FINAL_PROVIDER_REFUND = ("succeeded", "failed")

# Emptied by `rebuild`: what payments-svc's event log holds and what providers-svc's verdicts hold
# (``recon_disputes`` from every dispute state it published). The discrepancies are ours alone (no
# other service could give them back), so they are kept.
REBUILT_TABLES = (
    "recon_payments",
    "recon_refunds",
    "recon_provider_transactions",
    "recon_provider_refunds",
    "recon_disputes",
)


def _pick(newer: ColumnElement[bool], table: Table, excluded: Any, columns: list[str]) -> dict[str, Any]:
    """SET col = the incoming value when the incoming version is newer, else the stored one."""
    return {col: case((newer, excluded[col]), else_=table.c[col]) for col in columns}


def upsert_payment(snapshot: PaymentSnapshot, tenant_id: str, first_check: timedelta) -> Insert:
    """Our payment as the event carries it, unless a newer ``sequence`` is stored (REC-2). Entering
    PROVIDER_PENDING (or AUTHORIZED) starts the janitor's clock; leaving them stops it (REC-7)."""
    table = table_of(ReconPayment)
    pending_since = snapshot.updated_at if snapshot.status in PENDING_PAYMENTS else None
    # The account comes with the provider's verdict (provider_account_filed), which may have come first.
    attempts = table_of(ReconProviderTransaction)
    account = (
        select(attempts.c.account_id)
        .where(attempts.c.payment_id == snapshot.id, attempts.c.account_id.is_not(None))
        .limit(1)
        .scalar_subquery()
    )
    stmt = pg_insert(table).values(
        provider_account_id=account,
        id=snapshot.id,
        tenant_id=tenant_id,
        livemode=snapshot.livemode,
        status=snapshot.status,
        amount=paid_amount(snapshot),
        currency=snapshot.currency,
        amount_refunded=snapshot.amount_refunded,
        provider=snapshot.provider,
        provider_reference=snapshot.provider_reference,
        last_sequence=snapshot.sequence,
        created_at=snapshot.created_at,
        updated_at=snapshot.updated_at,
        succeeded_at=snapshot.updated_at if snapshot.status in _PAID else None,
        pending_since=pending_since,
        next_check_at=pending_since + first_check if pending_since is not None else None,
        checks=0,
    )
    ex = stmt.excluded
    # The sequence orders the versions of one payment; updated_at only breaks ties between events
    # written before sequences existed (all 0).
    newer = tuple_(table.c.last_sequence, table.c.updated_at) < tuple_(ex.last_sequence, ex.updated_at)
    was_pending = table.c.pending_since.is_not(None)
    now_pending = ex.pending_since.is_not(None)
    plain = ["status", "amount", "currency", "amount_refunded", "provider", "provider_reference"]
    values = {
        **_pick(newer, table, ex, [*plain, "livemode", "last_sequence", "updated_at"]),
        # One pending episode keeps its clock and schedule however many versions it goes through.
        "pending_since": case(
            (and_(newer, now_pending), func.coalesce(table.c.pending_since, ex.pending_since)),
            (newer, null()),
            else_=table.c.pending_since,
        ),
        "next_check_at": case(
            (and_(newer, now_pending, was_pending), table.c.next_check_at),
            (and_(newer, now_pending), ex.next_check_at),
            (newer, null()),
            else_=table.c.next_check_at,
        ),
        "checks": case((and_(newer, now_pending, ~was_pending), 0), else_=table.c.checks),
        # The earliest paid version we saw, whatever order the events came in.
        "succeeded_at": func.least(table.c.succeeded_at, ex.succeeded_at),
        "provider_account_id": func.coalesce(table.c.provider_account_id, ex.provider_account_id),
    }
    earlier_paid = and_(
        ex.succeeded_at.is_not(None), or_(table.c.succeeded_at.is_(None), table.c.succeeded_at > ex.succeeded_at)
    )
    return stmt.on_conflict_do_update(index_elements=["id"], set_=values, where=or_(newer, earlier_paid))


def paid_amount(snapshot: PaymentSnapshot) -> int:
    """The money a payment is about at its provider: what a manual capture took once captured (a
    partial capture released the rest, and the provider's statement shows what it took), else its
    amount (an automatic payment takes all of it; an AUTHORIZED one holds all of it)."""
    if snapshot.capture_method == "manual" and snapshot.status in _PAID:
        return snapshot.amount_captured
    return snapshot.amount


def upsert_refund(snapshot: RefundSnapshot, tenant_id: str, first_check: timedelta) -> Insert:
    """Our refund as the event carries it, unless a newer ``sequence`` is stored (REC-2). A PENDING
    refund is due for the janitor ``first_check`` after it was created (REC-7)."""
    table = table_of(ReconRefund)
    pending = snapshot.status == PENDING_REFUND
    stmt = pg_insert(table).values(
        id=snapshot.id,
        payment_id=snapshot.payment_id,
        tenant_id=tenant_id,
        livemode=snapshot.livemode,
        status=snapshot.status,
        amount=snapshot.amount,
        currency=snapshot.currency,
        provider=snapshot.provider,
        provider_refund_id=snapshot.provider_refund_id,
        last_sequence=snapshot.sequence,
        created_at=snapshot.created_at,
        updated_at=snapshot.updated_at,
        next_check_at=snapshot.created_at + first_check if pending else None,
        checks=0,
    )
    ex = stmt.excluded
    newer = tuple_(table.c.last_sequence, table.c.updated_at) < tuple_(ex.last_sequence, ex.updated_at)
    was_pending = table.c.status == PENDING_REFUND
    now_pending = ex.status == PENDING_REFUND
    columns = ["status", "amount", "currency", "livemode", "last_sequence", "updated_at"]
    values = {
        **_pick(newer, table, ex, columns),
        # The provider fields arrive late (the verdict): a newer version never blanks a known one.
        "provider": case((newer, func.coalesce(ex.provider, table.c.provider)), else_=table.c.provider),
        "provider_refund_id": case(
            (newer, func.coalesce(ex.provider_refund_id, table.c.provider_refund_id)),
            else_=table.c.provider_refund_id,
        ),
        "next_check_at": case(
            (and_(newer, now_pending, was_pending), table.c.next_check_at),
            (and_(newer, now_pending), ex.next_check_at),
            (newer, null()),
            else_=table.c.next_check_at,
        ),
    }
    return stmt.on_conflict_do_update(index_elements=["id"], set_=values, where=newer)


def upsert_provider_transaction(
    outcome: ProviderPaymentOutcome, status: str, occurred_at: datetime, now: datetime
) -> Insert:
    """A provider's verdict on a payment attempt; the later observation wins (REC-3)."""
    table = table_of(ReconProviderTransaction)
    stmt = pg_insert(table).values(
        provider_transaction_id=outcome.provider_transaction_id,
        payment_id=outcome.payment_id,
        provider=outcome.provider,
        provider_reference=outcome.provider_reference,
        amount=outcome.amount,
        currency=outcome.currency,
        status=status,
        observed_via=outcome.observed_via,
        account_id=outcome.account_id,
        occurred_at=occurred_at,
        updated_at=now,
    )
    ex = stmt.excluded
    columns = ["provider_reference", "amount", "currency", "status", "observed_via", "occurred_at", "updated_at"]
    return stmt.on_conflict_do_update(
        index_elements=["provider_transaction_id"],
        set_={**{col: ex[col] for col in columns}, "account_id": func.coalesce(ex.account_id, table.c.account_id)},
        where=table.c.occurred_at < ex.occurred_at,
    )


def provider_account_filed(payment_id: str, account_id: str) -> Update:
    """File our payment under the provider account its verdict names, when the payment came first
    (``upsert_payment`` takes it from the verdict when the verdict came first). An account, once known,
    stays: an attempt goes through one account."""
    table = table_of(ReconPayment)
    return (
        update(table)
        .where(table.c.id == payment_id, table.c.provider_account_id.is_(None))
        .values(provider_account_id=account_id)
    )


def provider_refund_key(refund: ProviderRefund) -> str:
    """Our refund id, or the provider's id of a refund it started on its own (none of ours yet)."""
    if refund.refund_id is not None:
        return refund.refund_id
    return f"{refund.provider}:{refund.provider_refund_id}"


def upsert_provider_refund(refund: ProviderRefund, now: datetime) -> Insert:
    """A provider's verdict on a refund: a final one is final; between pending ones the provider's
    later clock wins (REC-3)."""
    table = table_of(ReconProviderRefund)
    stmt = pg_insert(table).values(
        key=provider_refund_key(refund),
        refund_id=refund.refund_id,
        provider_refund_id=refund.provider_refund_id,
        payment_id=refund.payment_id,
        provider=refund.provider,
        provider_transaction_id=refund.provider_transaction_id,
        amount=refund.amount,
        currency=refund.currency,
        status=refund.status,
        observed_via=refund.observed_via,
        provider_updated_at=refund.provider_updated_at,
        updated_at=now,
    )
    ex = stmt.excluded
    columns = ["amount", "currency", "status", "observed_via", "provider_updated_at", "updated_at"]
    values: dict[str, Any] = {col: ex[col] for col in columns}
    values["provider_refund_id"] = func.coalesce(ex.provider_refund_id, table.c.provider_refund_id)
    changes = and_(
        table.c.status.not_in(_FINAL_PROVIDER_REFUND),
        or_(ex.status.in_(_FINAL_PROVIDER_REFUND), table.c.provider_updated_at < ex.provider_updated_at),
    )
    return stmt.on_conflict_do_update(index_elements=["key"], set_=values, where=changes)


async def empty_rebuilt_tables(session: AsyncSession) -> None:
    """Empty what `rebuild` refills, inside the caller's transaction."""
    await session.execute(text(f"TRUNCATE {', '.join(REBUILT_TABLES)}"))
