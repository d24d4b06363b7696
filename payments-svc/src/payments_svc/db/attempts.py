"""Queries and writes of ``payment_attempts``. A tenant reads its attempts through its payment; the
writes are for ``uow.write``, committed with the payment's change they go with."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from billing_contracts.envelope import utcnow
from billing_runtime.db import table_of
from billing_runtime.uow import UnitOfWork
from billing_runtime.writes import InsertRows, UpdateRows
from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from payments_svc.db.models import Payment, PaymentAttempt
from payments_svc.domain.attempts import AttemptStatus


async def attempts_of(session: AsyncSession, tenant_id: str, payment_id: str) -> list[PaymentAttempt]:
    """The payment's attempts, oldest first (none for another tenant's payment)."""
    stmt = (
        select(PaymentAttempt)
        .where(PaymentAttempt.tenant_id == tenant_id, PaymentAttempt.payment_id == payment_id)
        .order_by(PaymentAttempt.created_at, PaymentAttempt.id)
    )
    return list((await session.execute(stmt)).scalars())


@functools.cache
def _attempts_by_payment() -> Select[Any]:
    table = table_of(PaymentAttempt)
    return (
        select(*table.c).where(table.c.payment_id == bindparam("payment_id")).order_by(table.c.created_at, table.c.id)
    )


async def attempt_snapshots(uow: UnitOfWork, payment_id: str) -> list[PaymentAttempt]:
    """The payment's attempts as they are now, oldest first, outside the session: their changes go out
    as explicit writes guarded by the payment's ``payment_unchanged`` (every attempt change changes the
    payment too, or is decided again)."""
    rows = await uow.read_unlocked(_attempts_by_payment(), {"payment_id": payment_id})
    return [PaymentAttempt(**row) for row in rows]


def new_attempt_row(
    attempt_id: str, payment: Payment, provider: str, provider_transaction_id: str, reference: str | None, now: datetime
) -> dict[str, Any]:
    return {
        "id": attempt_id,
        "payment_id": payment.id,
        "tenant_id": payment.tenant_id,
        "provider": provider,
        "provider_transaction_id": provider_transaction_id,
        "provider_reference": reference,
        "status": AttemptStatus.PENDING.value,
        "failure_code": None,
        "failure_message": None,
        "created_at": now,
        "updated_at": now,
    }


def attempt_insert(row: dict[str, Any]) -> InsertRows:
    return InsertRows(table_of(PaymentAttempt), [row])


def attempt_end(
    payment_id: str,
    provider_transaction_id: str,
    status: AttemptStatus,
    now: datetime,
    *,
    reference: str | None = None,
    failure_code: str | None = None,
    failure_message: str | None = None,
) -> UpdateRows:
    """The UPDATE that ends one attempt (its reference kept unless the provider named one)."""
    values: dict[str, Any] = {
        "status": status.value,
        "failure_code": failure_code,
        "failure_message": failure_message,
        "updated_at": now,
    }
    if reference is not None:
        values["provider_reference"] = reference
    return UpdateRows(
        table_of(PaymentAttempt),
        {"payment_id": payment_id, "provider_transaction_id": provider_transaction_id},
        values,
    )


async def end_active_attempt(session: AsyncSession, payment: Payment, status: AttemptStatus) -> None:
    """End the payment's active attempt in the session's transaction (the payment's row lock held)."""
    table = table_of(PaymentAttempt)
    await session.execute(
        update(table)
        .where(
            table.c.payment_id == payment.id,
            table.c.provider_transaction_id == payment.provider_transaction_id,
            table.c.status == AttemptStatus.PENDING.value,
        )
        .values(status=status.value, updated_at=utcnow())
    )
