"""Payme's tables (PROTOCOLS.md §2) and their queries: ``payme_transactions``, one row per Payme transaction
exactly as ``protocols.payme.transactions`` decided it, and ``payme_reversals``, one row per performed
transaction Payme cancelled (the money went back to the payer; a later issue turns each into a refund).

Every query here runs inside the caller's database transaction; the ones that decide a move lock the rows
they read (``FOR UPDATE``), so two deliveries of one Payme call are applied one after the other."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any, NamedTuple, cast

from billing_runtime.db import UTCDateTime, table_of
from billing_runtime.prepared import fetch_prepared
from billing_runtime.uow import UnitOfWork
from billing_runtime.writes import Precondition, row_unchanged
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Index,
    ScalarSelect,
    Select,
    SmallInteger,
    String,
    bindparam,
    exists,
    literal,
    select,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from providers_svc.db.models import Base, ProviderTransactionRow
from providers_svc.db.repositories import to_transaction, transaction_from_row
from providers_svc.domain.transactions import Transaction
from providers_svc.protocols.payme.states import CancelReason, TransactionState
from providers_svc.protocols.payme.transactions import PaymeTransaction


class PaymeTransactionRow(Base):
    """One Payme transaction. ``id`` is ours, answered to Payme as ``transaction``; ``payme_id`` is Payme's.
    The three times are Payme's milliseconds as first decided: repeats are answered from them."""

    __tablename__ = "payme_transactions"
    __table_args__ = (
        CheckConstraint("state IN (1, 2, -1, -2)", name="state"),
        CheckConstraint("amount > 0", name="amount_positive"),
        # One active (created or performed) Payme transaction per order: two racing CreateTransaction
        # calls with different Payme ids for one order cannot both be stored.
        Index("uq_payme_transactions_active", "payment_id", unique=True, postgresql_where=text("state IN (1, 2)")),
        Index("ix_payme_transactions_payment", "payment_id"),
        Index("ix_payme_transactions_account_time", "account_id", "time"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    payme_id: Mapped[str] = mapped_column(String(64), unique=True)
    # The account whose key Payme authenticated with; only that account's calls see the row.
    account_id: Mapped[str] = mapped_column(String(40))
    provider_transaction_id: Mapped[str] = mapped_column(String(32))
    payment_id: Mapped[str] = mapped_column(String(64))
    amount: Mapped[int] = mapped_column(BigInteger)  # tiyin
    time: Mapped[int] = mapped_column(BigInteger)
    create_time: Mapped[int] = mapped_column(BigInteger)
    perform_time: Mapped[int] = mapped_column(BigInteger, server_default="0")
    cancel_time: Mapped[int] = mapped_column(BigInteger, server_default="0")
    state: Mapped[int] = mapped_column(SmallInteger)
    reason: Mapped[int | None] = mapped_column(SmallInteger)
    # SetFiscalData: the fiscal receipt Payme reports for the perform and for the cancel, as sent.
    fiscal_perform: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    fiscal_cancel: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class PaymeReversalRow(Base):
    """A performed Payme transaction that Payme cancelled (state -2): Payme gave the full amount back to
    the payer. Recorded so the money is not lost from our books until refunds (a later issue) pick it up
    (``refund_id``)."""

    __tablename__ = "payme_reversals"
    __table_args__ = (
        Index("ix_payme_reversals_payment", "payment_id"),
        # A statement's refund lines (``db.statements.payme_reversals``).
        Index("ix_payme_reversals_statement", "account_id", "cancel_time", "payme_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    payme_transaction_id: Mapped[str] = mapped_column(String(32), unique=True)
    payme_id: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[str] = mapped_column(String(40))
    provider_transaction_id: Mapped[str] = mapped_column(String(32))
    tenant_id: Mapped[str] = mapped_column(String(64))
    payment_id: Mapped[str] = mapped_column(String(64))
    livemode: Mapped[bool] = mapped_column(Boolean)
    amount: Mapped[int] = mapped_column(BigInteger)  # our minor units, as the payment's
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[int] = mapped_column(SmallInteger)
    cancel_time: Mapped[int] = mapped_column(BigInteger)
    refund_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


@dataclass(frozen=True)
class StoredPayme:
    """A stored Payme transaction: the protocol's record plus where it belongs."""

    record: PaymeTransaction
    account_id: str
    provider_transaction_id: str


def to_record(row: PaymeTransactionRow) -> StoredPayme:
    record = PaymeTransaction(
        payme_id=row.payme_id,
        transaction_id=row.id,
        payment_id=row.payment_id,
        amount=row.amount,
        time=row.time,
        create_time=row.create_time,
        state=TransactionState(row.state),
        perform_time=row.perform_time,
        cancel_time=row.cancel_time,
        reason=None if row.reason is None else CancelReason(row.reason),
    )
    return StoredPayme(record, row.account_id, row.provider_transaction_id)


def record_values(record: PaymeTransaction) -> dict[str, Any]:
    """The columns a decision changes (every one of them, so a row is always exactly the record)."""
    return {
        "state": int(record.state),
        "perform_time": record.perform_time,
        "cancel_time": record.cancel_time,
        "reason": None if record.reason is None else int(record.reason),
    }


# The two statements of every Payme call, built once (the ORM's construction of a statement cost about
# 6 % of a call under the bench); the values are bound per call.
@functools.cache
def _locked() -> Select[PaymeTransactionRow, ProviderTransactionRow]:
    return (
        select(PaymeTransactionRow, ProviderTransactionRow)
        .join(ProviderTransactionRow, ProviderTransactionRow.id == PaymeTransactionRow.provider_transaction_id)
        .where(PaymeTransactionRow.payme_id == bindparam("payme_id"))
        .with_for_update()
        .execution_options(populate_existing=True)
    )


@functools.cache
def _active_payme_id() -> ScalarSelect[str]:
    """Payme's id of the order's active (created or performed) transaction. State 1 or 2 as ``> 0`` (the
    states are 1, 2, -1, -2): an IN list would expand per call, and ``_order_columns`` is compiled to
    driver SQL once."""
    return (
        select(PaymeTransactionRow.payme_id)
        .where(PaymeTransactionRow.payment_id == bindparam("payment_id"), PaymeTransactionRow.state > 0)
        .limit(1)
        .scalar_subquery()
    )


@functools.cache
def _active_created_time() -> ScalarSelect[int]:
    """Payme's ``time`` of the order's active transaction when it is a created one (state 1): what its
    12-hour timeout is measured on. NULL when the active one is performed, or there is none."""
    return (
        select(PaymeTransactionRow.time)
        .where(
            PaymeTransactionRow.payment_id == bindparam("payment_id"),
            PaymeTransactionRow.state == int(TransactionState.CREATED),
        )
        .limit(1)
        .scalar_subquery()
    )


@functools.cache
def _order_columns() -> Select[Any]:
    # Our provider transaction of a payment at Payme, and Payme's id of its active (created or performed)
    # Payme transaction with its ``time`` when created, as plain columns for ``UnitOfWork.read_unlocked``:
    # CheckPerformTransaction and CreateTransaction decide on it without a transaction (their writes
    # carry a precondition), unless the active one is past its timeout (``order_in_transaction``).
    table = table_of(ProviderTransactionRow)
    return select(
        *table.c, _active_payme_id().label("active_payme_id"), _active_created_time().label("active_time")
    ).where(table.c.payment_id == bindparam("payment_id"), table.c.provider == bindparam("provider"))


class OrderRead(NamedTuple):
    """Our provider transaction of a payment, and what Payme holds on it: Payme's id of the active
    (created or performed) transaction, and its ``time`` when it is a created one."""

    transaction: Transaction
    active_payme_id: str | None
    active_time: int | None


def _order_read(row: dict[str, Any]) -> OrderRead:
    active = row.pop("active_payme_id")
    active_time = row.pop("active_time")
    return OrderRead(transaction_from_row(row), active, active_time)


async def order_unlocked(unit: UnitOfWork, payment_id: str, provider: str) -> OrderRead | None:
    """Our provider transaction of ``payment_id`` at ``provider`` and the active Payme transaction, read
    outside any transaction: one round trip."""
    rows = await unit.read_unlocked(_order_columns(), {"payment_id": payment_id, "provider": provider})
    return _order_read(dict(rows[0])) if rows else None


async def order_in_transaction(unit: UnitOfWork, payment_id: str, provider: str) -> OrderRead | None:
    """``order_unlocked``'s read in the unit's transaction: after the rows it decides on are locked, it
    sees what any concurrent writer committed before it got the locks."""
    rows = await fetch_prepared(unit.session, _order_columns(), {"payment_id": payment_id, "provider": provider})
    return _order_read(dict(rows[0])) if rows else None


@functools.cache
def _create_columns() -> Select[Any]:
    # One row whatever is stored: whether Payme's id ``:payme_id`` is stored (``payme_seen``), and the
    # order's columns as ``_order_columns`` reads them (NULL when there is no such order).
    order = _order_columns().subquery("o")
    seen = exists().where(PaymeTransactionRow.payme_id == bindparam("payme_id")).label("payme_seen")
    one = select(literal(1).label("one")).subquery("one")
    return select(seen, *order.c).select_from(one.outerjoin(order, true()))


async def create_unlocked(
    unit: UnitOfWork, payme_id: str, payment_id: str, provider: str
) -> tuple[bool, OrderRead | None]:
    """What a CreateTransaction decides on, in one round trip outside any transaction (one snapshot):
    whether Payme's id is stored already, and ``order_unlocked``'s answer for the order."""
    params = {"payme_id": payme_id, "payment_id": payment_id, "provider": provider}
    row = dict((await unit.read_unlocked(_create_columns(), params))[0])
    seen = bool(row.pop("payme_seen"))
    if row["id"] is None:
        return seen, None
    return seen, _order_read(row)


@functools.cache
def _with_transaction_columns() -> Select[Any]:
    # The Payme transaction and ours as plain columns (ours prefixed ``t_``), for ``read_unlocked``.
    payme, txn = table_of(PaymeTransactionRow), table_of(ProviderTransactionRow)
    return (
        select(*payme.c, *(c.label(f"t_{c.name}") for c in txn.c))
        .join_from(payme, txn, txn.c.id == payme.c.provider_transaction_id)
        .where(payme.c.payme_id == bindparam("payme_id"))
    )


async def payme_unlocked(unit: UnitOfWork, payme_id: str) -> tuple[StoredPayme, Transaction] | None:
    """The Payme transaction ``payme_id`` and our transaction, read without locks or a transaction (one
    round trip): a move decided on them is written only under ``payme_unchanged`` and
    ``transaction_unchanged``, so a concurrent repeat makes it decide again instead of moving twice."""
    rows = await unit.read_unlocked(_with_transaction_columns(), {"payme_id": payme_id})
    if not rows:
        return None
    payme = {k: v for k, v in rows[0].items() if not k.startswith("t_")}
    txn = {k[2:]: v for k, v in rows[0].items() if k.startswith("t_")}
    return to_record(cast("PaymeTransactionRow", SimpleNamespace(**payme))), transaction_from_row(txn)


def payme_unchanged(record: PaymeTransaction) -> Precondition:
    """ "The Payme transaction is still exactly as read": its state and times (every move sets one),
    checked with its row locked in the statement that writes."""
    values = {
        "id": record.transaction_id,
        "state": int(record.state),
        "perform_time": record.perform_time,
        "cancel_time": record.cancel_time,
    }
    return row_unchanged(table_of(PaymeTransactionRow), values, name="p")


class PaymeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def locked(self, payme_id: str) -> tuple[PaymeTransactionRow, Transaction] | None:
        """The Payme transaction ``payme_id`` and its provider transaction, both locked for update (one
        statement): the decision on them is applied before anyone else decides. The caller checks that
        it is the authenticated account's."""
        row = (await self.session.execute(_locked(), {"payme_id": payme_id})).first()
        return None if row is None else (row[0], to_transaction(row[1]))

    async def get(self, payme_id: str, account_id: str, *, for_update: bool = False) -> PaymeTransactionRow | None:
        stmt = (
            select(PaymeTransactionRow)
            .where(PaymeTransactionRow.payme_id == payme_id, PaymeTransactionRow.account_id == account_id)
            .execution_options(populate_existing=True)
        )
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def of_payment(self, payment_id: str) -> Sequence[PaymeTransactionRow]:
        stmt = (
            select(PaymeTransactionRow)
            .where(PaymeTransactionRow.payment_id == payment_id)
            .order_by(PaymeTransactionRow.time, PaymeTransactionRow.id)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def statement(self, account_id: str, start: int, end: int) -> Sequence[PaymeTransactionRow]:
        stmt = select(PaymeTransactionRow).where(
            PaymeTransactionRow.account_id == account_id,
            PaymeTransactionRow.time >= start,
            PaymeTransactionRow.time <= end,
        )
        return (await self.session.execute(stmt)).scalars().all()
