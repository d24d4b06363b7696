"""Every query of payments-svc. Tenant repositories filter by tenant in their base statement, so no
query can forget tenancy; the few cross-tenant lookups (checkout token, sweeper) are named as such."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any

from billing_runtime.uow import UnitOfWork
from billing_runtime.writes import (
    InsertRows,
    Precondition,
    UpdateRows,
    row_unchanged,
)
from sqlalchemy import Insert, Select, bindparam, delete, func, select, true, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from payments_svc.db.models import IdempotencyKey, Payment, PaymentStatusChange, TenantEvent, inbox


class PaymentRepository:
    def __init__(self, session: AsyncSession, tenant_id: str) -> None:
        self.session = session
        self.tenant_id = tenant_id

    def _base(self) -> Select[tuple[Payment]]:
        return select(Payment).where(Payment.tenant_id == self.tenant_id)

    async def get(self, payment_id: str, *, for_update: bool = False) -> Payment | None:
        stmt = self._base().where(Payment.id == payment_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def list(self, *, limit: int, offset: int, status: str | None, order_id: str | None) -> list[Payment]:
        stmt = self._base()
        if status is not None:
            stmt = stmt.where(Payment.status == status)
        if order_id is not None:
            stmt = stmt.where(Payment.order_id == order_id)
        stmt = stmt.order_by(Payment.created_at.desc(), Payment.id.desc()).limit(limit).offset(offset)
        return list((await self.session.execute(stmt)).scalars())

    def add_history(self, change: PaymentStatusChange) -> None:
        self.session.add(change)

    async def history(self, payment_id: str) -> list[PaymentStatusChange]:
        stmt = (
            select(PaymentStatusChange)
            .join(Payment, Payment.id == PaymentStatusChange.payment_id)
            .where(Payment.tenant_id == self.tenant_id, PaymentStatusChange.payment_id == payment_id)
            .order_by(PaymentStatusChange.id)
        )
        return list((await self.session.execute(stmt)).scalars())


@functools.cache
def _payment_by_id() -> Select[Any]:
    table = Payment.__table__
    return select(*table.c).where(table.c.id == bindparam("id"), table.c.tenant_id == bindparam("tenant_id"))


async def payment_snapshot(uow: UnitOfWork, tenant_id: str, payment_id: str) -> Payment | None:
    """The payment as it is now, unlocked, as an object outside the session: changes to it are never
    flushed, they go out as explicit writes (``payment_update``) guarded by ``payment_unchanged``.
    On PostgreSQL outside any transaction and without the ORM's loading machinery: this read is on
    the path of every provider outcome."""
    rows = await uow.read_unlocked(_payment_by_id(), {"id": payment_id, "tenant_id": tenant_id})
    if not rows:
        return None
    return Payment(**{attr: rows[0][column] for column, attr in _payment_columns()})


def payment_unchanged(payment: Payment) -> Precondition:
    """ "The payment is still exactly as read" (every change stamps ``updated_at``), checked with its
    row locked in the statement that writes: taken before changing the object."""
    return row_unchanged(
        Payment.__table__, {"id": payment.id, "status": payment.status, "updated_at": payment.updated_at}
    )


async def was_consumed(uow_factory: Callable[[], UnitOfWork], consumer: str, message_id: str) -> bool:
    """Whether the inbox holds ``message_id`` for ``consumer`` (a guarded write that wrote nothing)."""
    async with uow_factory() as uow:
        stmt = select(inbox.c.message_id).where(inbox.c.consumer == consumer, inbox.c.message_id == message_id)
        return (await uow.session.execute(stmt)).first() is not None


@functools.cache
def _payment_columns() -> tuple[tuple[str, str], ...]:
    # (column key, attribute): the ``metadata`` column is the ``metadata_`` attribute.
    return tuple((prop.columns[0].key, prop.key) for prop in Payment.__mapper__.column_attrs)


def _column_values(obj: Payment) -> dict[str, Any]:
    return {column: getattr(obj, attr) for column, attr in _payment_columns()}


def payment_update(payment: Payment, columns: tuple[str, ...]) -> UpdateRows:
    """The UPDATE of ``columns`` of a payment, with the values its object holds now, for ``uow.write``
    (a payment read outside the session, whose change is guarded with the rest of its unit)."""
    values = _column_values(payment)
    return UpdateRows(Payment.__table__, {"id": payment.id}, {column: values[column] for column in columns})


def history_insert(
    *,
    payment_id: str,
    from_status: str | None,
    to_status: str,
    actor: str,
    reason: str | None,
    event_id: str | None,
    created_at: datetime,
) -> InsertRows:
    """The INSERT of a history row, for ``uow.write`` (its payment is checked by the caller)."""
    row = {
        "payment_id": payment_id,
        "from_status": from_status,
        "to_status": to_status,
        "actor": actor,
        "reason": reason,
        "event_id": event_id,
        "created_at": created_at,
    }
    return InsertRows(PaymentStatusChange.__table__, [row])


async def payment_by_checkout_token(session: AsyncSession, token: str, *, for_update: bool = False) -> Payment | None:
    """Cross-tenant on purpose: the checkout token alone is the payer's credential."""
    stmt = select(Payment).where(Payment.checkout_token == token)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def payments_due_for_expiry(
    session: AsyncSession, now: datetime, statuses: list[str], limit: int
) -> list[Payment]:
    """Cross-tenant on purpose (the sweeper). SKIP LOCKED lets several sweepers share the work."""
    stmt = (
        select(Payment)
        .where(Payment.status.in_(statuses), Payment.expires_at <= now)
        .order_by(Payment.expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(stmt)).scalars())


class EventRepository:
    def __init__(self, session: AsyncSession, tenant_id: str) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def seq_of(self, event_id: str) -> int | None:
        stmt = select(TenantEvent.seq).where(TenantEvent.tenant_id == self.tenant_id, TenantEvent.id == event_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def list_after(self, after_seq: int, *, limit: int, type_: str | None) -> list[TenantEvent]:
        stmt = select(TenantEvent).where(TenantEvent.tenant_id == self.tenant_id, TenantEvent.seq > after_seq)
        if type_ is not None:
            stmt = stmt.where(TenantEvent.type == type_)
        stmt = stmt.order_by(TenantEvent.seq).limit(limit)
        return list((await self.session.execute(stmt)).scalars())


class IdempotencyRepository:
    def __init__(self, session: AsyncSession, tenant_id: str) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def insert_in_flight(
        self, method: str, path: str, key: str, fingerprint: str, now: datetime, locked_until: datetime
    ) -> int | None:
        """Claim the key and return the new row's id; None when a row for it already exists (never
        raises on the race)."""
        values = {
            "tenant_id": self.tenant_id,
            "method": method,
            "path": path,
            "key": key,
            "fingerprint": fingerprint,
            "locked_until": locked_until,
            "created_at": now,
        }
        dialect = self.session.bind.dialect.name if self.session.bind is not None else "postgresql"
        if dialect != "postgresql":
            stmt = sqlite_insert(IdempotencyKey).values(**values).on_conflict_do_nothing()
            return (await self.session.execute(stmt.returning(IdempotencyKey.id))).scalar_one_or_none()
        return (await self.session.execute(_pg_claim(), values)).scalar_one_or_none()

    async def get(self, method: str, path: str, key: str) -> IdempotencyKey | None:
        stmt = select(IdempotencyKey).where(
            IdempotencyKey.tenant_id == self.tenant_id,
            IdempotencyKey.method == method,
            IdempotencyKey.path == path,
            IdempotencyKey.key == key,
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def take_over(self, row_id: int, stale_lock: datetime, new_lock: datetime) -> bool:
        """Re-claim an in-flight key whose holder died (its lock expired); only one taker wins."""
        stmt = (
            update(IdempotencyKey)
            .where(IdempotencyKey.id == row_id, IdempotencyKey.locked_until == stale_lock)
            .where(IdempotencyKey.completed_at.is_(None))
            .values(locked_until=new_lock)
        )
        return bool((await self.session.execute(stmt)).rowcount)  # type: ignore[attr-defined]

    def complete(self, row_id: int, status: int, body: str, now: datetime) -> UpdateRows:
        """The UPDATE that stores the response, for ``uow.write`` (it commits with the effect, IDEM-1)."""
        return UpdateRows(
            IdempotencyKey.__table__,
            where={"id": row_id, "tenant_id": self.tenant_id},
            values={"response_status": status, "response_body": body, "completed_at": now, "locked_until": None},
        )

    async def release(self, row_id: int) -> None:
        """Forget an in-flight key whose request failed before any effect, so a retry runs afresh."""
        await self.session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.id == row_id, IdempotencyKey.completed_at.is_(None))
        )


@functools.cache
def _pg_claim() -> Insert:
    """The PostgreSQL claim, built once (it is on every create's path; only the values change).

    IDEM-4: a claim lost in a crash is harmless (no effect ran; the retry claims again), so its commit
    need not wait for the WAL flush. set_config(..., true) is SET LOCAL as an expression: in RETURNING
    it runs inside the INSERT (no extra round trip) and holds until this claim's transaction commits.
    With no row inserted nothing is written, so nothing needs relaxing.
    """
    table = IdempotencyKey.__table__
    columns = ("tenant_id", "method", "path", "key", "fingerprint", "locked_until", "created_at")
    return (
        pg_insert(table)
        .values({c: bindparam(c, type_=table.c[c].type) for c in columns})
        .on_conflict_do_nothing()
        .returning(table.c.id, func.set_config("synchronous_commit", "off", true()))
    )


async def delete_idempotency_keys_before(session: AsyncSession, cutoff: datetime) -> int:
    result = await session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff))
    return int(result.rowcount)  # type: ignore[attr-defined]


def payment_insert(payment: Payment) -> InsertRows:
    """The INSERT of a new payment, for ``uow.write``: queued rather than ``session.add``ed, so that
    it rides in the commit's single statement, skipping the ORM flush (and the session)."""
    return InsertRows(Payment.__table__, [_column_values(payment)])


def completed_idempotency_key(
    tenant_id: str, method: str, path: str, key: str, fingerprint: str, status: int, body: str, now: datetime
) -> InsertRows:
    """A key claimed and completed at once, as the guard of a fused commit (IDEM-5): the row is
    inserted with its response, together with the effect, or not at all."""
    row = {
        "tenant_id": tenant_id,
        "method": method,
        "path": path,
        "key": key,
        "fingerprint": fingerprint,
        "locked_until": None,
        "response_status": status,
        "response_body": body,
        "created_at": now,
        "completed_at": now,
    }
    return InsertRows(IdempotencyKey.__table__, [row])
