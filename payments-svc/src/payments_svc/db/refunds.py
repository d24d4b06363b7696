"""Queries of refunds: the reservation that accepts a refund (the refund bound, REF-1), the tenant's
reads, and the consumer's reads of a payment's refunds under the payment's row lock."""

from __future__ import annotations

import builtins
import functools
from datetime import datetime
from typing import Any

from billing_runtime.db import table_of
from billing_runtime.uow import UnitOfWork
from billing_runtime.writes import InsertRows
from sqlalchemy import Select, Update, bindparam, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from payments_svc.db.models import Payment, PaymentStatusChange, Refund
from payments_svc.db.repositories import payment_from_row
from payments_svc.domain.payment import PaymentStatus
from payments_svc.domain.refunds import REFUNDABLE


@functools.cache
def _reserve() -> Update:
    # The refund bound as one guarded UPDATE: it raises the reservation only while the payment is
    # refundable and the sum stays within what it captured. Concurrent reservations queue on the row lock
    # and PostgreSQL re-checks the WHERE on the row as the one before left it, so no interleaving can
    # accept more than the payment (and the CHECK ``refund_reserved_bounds`` refuses it anyway).
    table = table_of(Payment)
    amount = bindparam("r_amount", type_=table.c.refund_reserved.type)
    return (
        update(table)
        .where(
            table.c.id == bindparam("r_id"),
            table.c.tenant_id == bindparam("r_tenant"),
            table.c.status.in_([str(s) for s in REFUNDABLE]),
            table.c.refund_reserved + amount <= table.c.amount_captured,
        )
        .values(refund_reserved=table.c.refund_reserved + amount)
        .returning(*table.c)
    )


async def reserve(session: AsyncSession, tenant_id: str, payment_id: str, amount: int) -> Payment | None:
    """Reserve ``amount`` of the payment for a new refund, in the session's transaction (which then
    inserts the refund and its event); the payment as it is now, or None when it was refused (not
    the tenant's, not refundable, or not that much left)."""
    result = await session.execute(_reserve(), {"r_id": payment_id, "r_tenant": tenant_id, "r_amount": amount})
    row = result.mappings().first()
    return None if row is None else payment_from_row(dict(row))


def refund_insert(refund: Refund) -> InsertRows:
    table = table_of(Refund)
    return InsertRows(table, [{column.key: getattr(refund, column.key) for column in table.c}])


@functools.cache
def _paid_at() -> Select[Any]:
    table = table_of(PaymentStatusChange)
    return select(func.min(table.c.created_at).label("paid_at")).where(
        table.c.payment_id == bindparam("payment_id"), table.c.to_status == str(PaymentStatus.SUCCEEDED)
    )


async def paid_at(uow: UnitOfWork, payment_id: str) -> datetime | None:
    """When the payment became SUCCEEDED here (from its history), unlocked."""
    rows = await uow.read_unlocked(_paid_at(), {"payment_id": payment_id})
    return rows[0]["paid_at"] if rows else None


class RefundRepository:
    """The tenant's refunds: every query filters by tenant."""

    def __init__(self, session: AsyncSession, tenant_id: str) -> None:
        self.session = session
        self.tenant_id = tenant_id

    def _base(self) -> Select[Refund]:
        return select(Refund).where(Refund.tenant_id == self.tenant_id)

    async def get(self, refund_id: str) -> Refund | None:
        return (await self.session.execute(self._base().where(Refund.id == refund_id))).scalar_one_or_none()

    async def cursor_of(self, payment_id: str, refund_id: str) -> tuple[datetime, str] | None:
        """The list position of one of the payment's refunds (None when it has no such refund)."""
        stmt = select(Refund.created_at, Refund.id).where(
            Refund.tenant_id == self.tenant_id, Refund.payment_id == payment_id, Refund.id == refund_id
        )
        row = (await self.session.execute(stmt)).first()
        return None if row is None else (row.created_at, row.id)

    async def list_for_payment(
        self,
        payment_id: str,
        *,
        limit: int,
        offset: int,
        starting_after: tuple[datetime, str] | None = None,
        ending_before: tuple[datetime, str] | None = None,
    ) -> builtins.list[Refund]:
        """Newest first by (created_at, id), paged as ``PaymentRepository.list`` is."""
        position = tuple_(Refund.created_at, Refund.id)
        stmt = self._base().where(Refund.payment_id == payment_id)
        if ending_before is not None:
            stmt = stmt.where(position > tuple_(*ending_before)).order_by(Refund.created_at, Refund.id)
            rows = list((await self.session.execute(stmt.limit(limit).offset(offset))).scalars())
            return rows[::-1]
        if starting_after is not None:
            stmt = stmt.where(position < tuple_(*starting_after))
        stmt = stmt.order_by(Refund.created_at.desc(), Refund.id.desc()).limit(limit).offset(offset)
        return list((await self.session.execute(stmt)).scalars())


async def refunds_of_payment(session: AsyncSession, payment_id: str) -> builtins.list[Refund]:
    """Every refund of a payment (a handful), read after its row is locked: with the lock, exactly
    what the payment's refund totals follow from."""
    stmt = select(Refund).where(Refund.payment_id == payment_id).order_by(Refund.created_at, Refund.id)
    return list((await session.execute(stmt)).scalars())
