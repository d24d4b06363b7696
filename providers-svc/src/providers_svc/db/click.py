"""Click's reservations (``click_reservations``): one row per Click attempt (``click_trans_id``), written
by Prepare and moved by Complete. Its id is the ``merchant_prepare_id`` we give Click (PROTOCOLS.md §1)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any, cast

from billing_runtime.db import UTCDateTime, table_of
from billing_runtime.uow import UnitOfWork
from billing_runtime.writes import InsertRows, Precondition, UpdateRows, row_unchanged
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ColumnElement,
    Identity,
    Select,
    String,
    bindparam,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from providers_svc.db.models import Base, ProviderTransactionRow
from providers_svc.db.repositories import to_transaction, transaction_from_row
from providers_svc.domain.transactions import Transaction
from providers_svc.protocols.click.records import PrepareState, PrepareView

PROVIDER = "click"


class ClickReservationRow(Base):
    """``state`` moves only ``prepared → confirmed`` or ``prepared → cancelled``, each by an UPDATE
    conditional on ``prepared``, written with the provider transaction as read under its row lock
    (services/click.py)."""

    __tablename__ = "click_reservations"
    __table_args__ = (
        CheckConstraint("state IN ('prepared', 'confirmed', 'cancelled')", name="state"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    # A sequence, not a random id: Click documents merchant_prepare_id as int, so keep it small.
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # One reservation per Click attempt: two concurrent Prepares of one attempt insert one row.
    click_trans_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    click_paydoc_id: Mapped[int] = mapped_column(BigInteger)
    merchant_trans_id: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[str] = mapped_column(String(40))
    provider_transaction_id: Mapped[str] = mapped_column(String(32), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)  # tiyin, as reserved
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


# -- queries (run in the caller's transaction, which holds the locks until it commits) ------------------


def _reservation_view(row: ClickReservationRow) -> PrepareView:
    return PrepareView(
        merchant_prepare_id=row.id,
        click_trans_id=row.click_trans_id,
        merchant_trans_id=row.merchant_trans_id,
        amount=row.amount,
        state=PrepareState(row.state),
    )


@dataclass(frozen=True)
class Reservation:
    """A stored reservation: what the decisions see, and the transaction it belongs to."""

    view: PrepareView
    provider_transaction_id: str
    # The account whose Prepare made it: only that account's word may release it.
    account_id: str


# The statements of every Click call, built once (the ORM's construction of a statement is a measurable
# part of a call under the bench); the values are bound per call.
@functools.cache
def _order(lock: bool) -> Select[ProviderTransactionRow]:
    stmt = (
        select(ProviderTransactionRow)
        .where(
            ProviderTransactionRow.payment_id == bindparam("payment_id"), ProviderTransactionRow.provider == PROVIDER
        )
        .execution_options(populate_existing=True)
    )
    return stmt.with_for_update() if lock else stmt


@functools.cache
def _reservation(by_attempt: bool) -> Select[ClickReservationRow]:
    column = ClickReservationRow.click_trans_id if by_attempt else ClickReservationRow.id
    return (
        select(ClickReservationRow)
        .where(column == bindparam("key"))
        .with_for_update()
        .execution_options(populate_existing=True)
    )


# -- the same reads without locks, for a decision written under ``transaction_unchanged`` and
# ``reservation_unchanged`` (or a reservation insert that is its own guard): two round trips, no BEGIN.


@functools.cache
def _order_columns(with_next_id: bool) -> Select[Any]:
    # With the id a new reservation would get, for a Prepare: one that reserves answers it, so it is
    # taken from the sequence up front (an unused one is a harmless gap; Click needs the ids unique,
    # not dense).
    table = table_of(ProviderTransactionRow)
    next_id: ColumnElement[int] = literal_column("nextval(pg_get_serial_sequence('click_reservations', 'id'))")
    columns = [*table.c, next_id.label("next_reservation_id")] if with_next_id else list(table.c)
    return select(*columns).where(table.c.payment_id == bindparam("payment_id"), table.c.provider == PROVIDER)


@functools.cache
def _reservation_columns(by_attempt: bool) -> Select[Any]:
    table = table_of(ClickReservationRow)
    column = table.c.click_trans_id if by_attempt else table.c.id
    return select(*table.c).where(column == bindparam("key"))


async def click_order_unlocked(
    unit: UnitOfWork, payment_id: str, *, with_next_id: bool
) -> tuple[Transaction, int] | None:
    """Our Click transaction for ``payment_id`` as it is now, and (``with_next_id``) an unused
    reservation id, else 0."""
    rows = await unit.read_unlocked(_order_columns(with_next_id), {"payment_id": payment_id})
    if not rows:
        return None
    row = dict(rows[0])
    next_id = int(row.pop("next_reservation_id", 0))
    return transaction_from_row(row), next_id


async def reservation_unlocked(
    unit: UnitOfWork, *, click_trans_id: int | None = None, reservation_id: int | None = None
) -> Reservation | None:
    by_attempt = click_trans_id is not None
    key = click_trans_id if by_attempt else reservation_id
    rows = await unit.read_unlocked(_reservation_columns(by_attempt), {"key": key})
    if not rows:
        return None
    row = cast("ClickReservationRow", SimpleNamespace(**rows[0]))
    return Reservation(_reservation_view(row), row.provider_transaction_id, row.account_id)


def reservation_unchanged(view: PrepareView) -> Precondition:
    """ "The reservation is still in the state read", checked with its row locked."""
    values = {"id": view.merchant_prepare_id, "state": view.state.value}
    return row_unchanged(table_of(ClickReservationRow), values, name="r")


def reservation_insert(new: NewReservation, reservation_id: int, now: datetime) -> InsertRows:
    """A new reservation with the id taken up front; as a guard it is inserted only if no reservation
    has its ``click_trans_id`` (a concurrent Prepare of the same attempt stored first) or its id."""
    row = {
        "id": reservation_id,
        "click_trans_id": new.click_trans_id,
        "click_paydoc_id": new.click_paydoc_id,
        "merchant_trans_id": new.merchant_trans_id,
        "account_id": new.account_id,
        "provider_transaction_id": new.provider_transaction_id,
        "amount": new.amount,
        "state": PrepareState.PREPARED.value,
        "created_at": now,
        "updated_at": now,
    }
    return InsertRows(table_of(ClickReservationRow), [row])


async def lock_click_order(session: AsyncSession, payment_id: str, *, lock: bool = True) -> Transaction | None:
    """Our Click transaction for ``payment_id`` (Click's ``merchant_trans_id``), its row locked: every
    Click call about one order runs one at a time, so a confirm and a cancel never both win."""
    row = (await session.execute(_order(lock), {"payment_id": payment_id})).scalar_one_or_none()
    return to_transaction(row) if row is not None else None


async def lock_reservation(
    session: AsyncSession, *, click_trans_id: int | None = None, reservation_id: int | None = None
) -> Reservation | None:
    """The reservation of one Click attempt (Prepare) or with one id (Complete), its row locked."""
    by_attempt = click_trans_id is not None
    key = click_trans_id if by_attempt else reservation_id
    row = (await session.execute(_reservation(by_attempt), {"key": key})).scalar_one_or_none()
    if row is None:
        return None
    return Reservation(_reservation_view(row), row.provider_transaction_id, row.account_id)


@dataclass(frozen=True)
class NewReservation:
    click_trans_id: int
    click_paydoc_id: int
    merchant_trans_id: str
    account_id: str
    provider_transaction_id: str
    amount: int


async def insert_reservation(session: AsyncSession, new: NewReservation, now: datetime) -> int | None:
    """The new reservation's id (our ``merchant_prepare_id``), or None when a concurrent Prepare of the
    same ``click_trans_id`` inserted it first (the caller decides again with that one)."""
    stmt = (
        pg_insert(ClickReservationRow)
        .values(
            click_trans_id=new.click_trans_id,
            click_paydoc_id=new.click_paydoc_id,
            merchant_trans_id=new.merchant_trans_id,
            account_id=new.account_id,
            provider_transaction_id=new.provider_transaction_id,
            amount=new.amount,
            state=PrepareState.PREPARED.value,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=[ClickReservationRow.click_trans_id])
        .returning(ClickReservationRow.id)
    )
    inserted = (await session.execute(stmt)).scalar_one_or_none()
    return int(inserted) if inserted is not None else None


def reservation_move(reservation_id: int, state: PrepareState, now: datetime) -> UpdateRows:
    """prepared → ``state``, only while prepared (for ``uow.write``)."""
    return UpdateRows(
        table_of(ClickReservationRow),
        {"id": reservation_id, "state": PrepareState.PREPARED.value},
        {"state": state.value, "updated_at": now},
    )


async def reservations_of(session: AsyncSession, provider_transaction_id: str) -> list[tuple[PrepareView, int]]:
    """Every reservation of one transaction with its Click payment number, oldest first (the
    simulator's Merchant API reads them)."""
    stmt = (
        select(ClickReservationRow)
        .where(ClickReservationRow.provider_transaction_id == provider_transaction_id)
        .order_by(ClickReservationRow.id)
    )
    return [(_reservation_view(row), row.click_paydoc_id) for row in (await session.execute(stmt)).scalars().all()]


async def reservation_by_paydoc(session: AsyncSession, click_paydoc_id: int) -> tuple[PrepareView, str] | None:
    """The reservation Click's payment number ``click_paydoc_id`` paid, with its account's id."""
    stmt = select(ClickReservationRow).where(ClickReservationRow.click_paydoc_id == click_paydoc_id).limit(1)
    row = (await session.execute(stmt)).scalar_one_or_none()
    return (_reservation_view(row), row.account_id) if row is not None else None
