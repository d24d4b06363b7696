"""Every query of payments-svc. Tenant repositories filter by tenant in their base statement, so no
query can forget tenancy; the few cross-tenant lookups (checkout token, sweeper) are named as such."""

from __future__ import annotations

import builtins
import functools
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from billing_runtime.db import table_of
from billing_runtime.uow import UnitOfWork
from billing_runtime.writes import (
    InsertRows,
    Precondition,
    UpdateRows,
    row_unchanged,
)
from sqlalchemy import (
    Insert,
    Select,
    Update,
    bindparam,
    delete,
    func,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from payments_svc.db.models import IdempotencyKey, Payment, PaymentStatusChange, inbox
from payments_svc.domain.payment import PaymentStatus


class PaymentRepository:
    def __init__(self, session: AsyncSession, tenant_id: str) -> None:
        self.session = session
        self.tenant_id = tenant_id

    def _base(self) -> Select[Payment]:
        return select(Payment).where(Payment.tenant_id == self.tenant_id)

    async def get(self, payment_id: str, *, for_update: bool = False) -> Payment | None:
        stmt = self._base().where(Payment.id == payment_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def list(
        self,
        *,
        limit: int,
        offset: int,
        status: str | None,
        order_id: str | None,
        starting_after: tuple[datetime, str] | None = None,
        ending_before: tuple[datetime, str] | None = None,
    ) -> builtins.list[Payment]:
        """Newest first, by (created_at, id): a total order, so a cursor (the (created_at, id) of a
        payment, from ``cursor_of``) pages stably even when payments share a ``created_at``.
        ``ending_before`` reads the page before the cursor backwards (on the index) and turns it."""
        position = tuple_(Payment.created_at, Payment.id)
        stmt = self._base()
        if status is not None:
            stmt = stmt.where(Payment.status == status)
        if order_id is not None:
            stmt = stmt.where(Payment.order_id == order_id)
        if ending_before is not None:
            stmt = stmt.where(position > tuple_(*ending_before)).order_by(Payment.created_at, Payment.id)
            rows = list((await self.session.execute(stmt.limit(limit).offset(offset))).scalars())
            return rows[::-1]
        if starting_after is not None:
            stmt = stmt.where(position < tuple_(*starting_after))
        stmt = stmt.order_by(Payment.created_at.desc(), Payment.id.desc()).limit(limit).offset(offset)
        return list((await self.session.execute(stmt)).scalars())

    async def cursor_of(self, payment_id: str) -> tuple[datetime, str] | None:
        """The list position of one of the tenant's payments (None when it has no such payment)."""
        stmt = select(Payment.created_at, Payment.id).where(
            Payment.tenant_id == self.tenant_id, Payment.id == payment_id
        )
        row = (await self.session.execute(stmt)).first()
        return None if row is None else (row.created_at, row.id)

    def add_history(self, change: PaymentStatusChange) -> None:
        self.session.add(change)

    async def history(self, payment_id: str) -> builtins.list[PaymentStatusChange]:
        stmt = (
            select(PaymentStatusChange)
            .join(Payment, Payment.id == PaymentStatusChange.payment_id)
            .where(Payment.tenant_id == self.tenant_id, PaymentStatusChange.payment_id == payment_id)
            .order_by(PaymentStatusChange.id)
        )
        return list((await self.session.execute(stmt)).scalars())


@functools.cache
def _payment_by_id() -> Select[Any]:
    table = table_of(Payment)
    return select(*table.c).where(table.c.id == bindparam("id"), table.c.tenant_id == bindparam("tenant_id"))


async def payment_snapshot(uow: UnitOfWork, tenant_id: str, payment_id: str) -> Payment | None:
    """The payment as it is now, unlocked, as an object outside the session: changes to it are never
    flushed, they go out as explicit writes (``payment_update``) guarded by ``payment_unchanged``.
    On PostgreSQL outside any transaction and without the ORM's loading machinery: this read is on
    the path of every provider outcome."""
    rows = await uow.read_unlocked(_payment_by_id(), {"id": payment_id, "tenant_id": tenant_id})
    return payment_from_row(rows[0]) if rows else None


def payment_from_row(row: Mapping[str, Any]) -> Payment:
    """A payment object outside any session, from a row of all its columns by column key."""
    return Payment(**{attr: row[column] for column, attr in _payment_columns()})


def payment_unchanged(payment: Payment) -> Precondition:
    """ "The payment is still exactly as read" (every change stamps ``updated_at``), checked with its
    row locked in the statement that writes: taken before changing the object."""
    return row_unchanged(
        table_of(Payment), {"id": payment.id, "status": payment.status, "updated_at": payment.updated_at}
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
    return UpdateRows(table_of(Payment), {"id": payment.id}, {column: values[column] for column in columns})


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
    return InsertRows(table_of(PaymentStatusChange), [row])


@functools.cache
def _payment_by_checkout_token() -> Select[Any]:
    table = table_of(Payment)
    return select(*table.c).where(table.c.checkout_token == bindparam("token"))


async def payment_by_checkout_token(uow: UnitOfWork, token: str) -> Payment | None:
    """Cross-tenant on purpose: the checkout token alone is the payer's credential. Unlocked, outside
    the session, as ``payment_snapshot``: on the path of every checkout view and click."""
    rows = await uow.read_unlocked(_payment_by_checkout_token(), {"token": token})
    return payment_from_row(rows[0]) if rows else None


async def claim_due_for_expiry(
    session: AsyncSession, now: datetime, limit: int
) -> builtins.list[tuple[str, str, str | None, bool, int]]:
    """Cross-tenant on purpose (the sweeper): up to ``limit`` payable or authorized payments due for an
    expiry attempt, as (id, tenant, provider transaction, livemode, attempt count), each pushed back for its
    next attempt in the caller's transaction (SKIP LOCKED lets several sweepers share the work). The delay doubles with
    every attempt, from ``SWEEP_RETRY_FIRST`` up to ``SWEEP_RETRY_MAX``: a payment its provider will
    not let go is retried, ever more rarely, behind every other overdue payment."""
    table = table_of(Payment)
    stmt = (
        select(
            table.c.id,
            table.c.tenant_id,
            table.c.provider_transaction_id,
            table.c.livemode,
            table.c.sweep_attempts,
            table.c.attempt_count,
        )
        .where(table.c.status.in_(_SWEPT), table.c.sweep_at <= now)
        .order_by(table.c.sweep_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = (await session.execute(stmt)).all()
    if rows:
        await session.execute(
            _push_back(),
            [
                {"b_id": row.id, "b_at": now + _sweep_delay(row.sweep_attempts), "b_attempts": row.sweep_attempts + 1}
                for row in rows
            ],
        )
    return [(row.id, row.tenant_id, row.provider_transaction_id, row.livemode, row.attempt_count) for row in rows]


# Payable payments expire at ``expires_at``; an AUTHORIZED one's hold is released at
# ``authorization_expires_at`` (its ``sweep_at`` is set to it when it becomes AUTHORIZED).
_SWEPT = (PaymentStatus.CREATED, PaymentStatus.PROVIDER_PENDING, PaymentStatus.AUTHORIZED)
SWEEP_RETRY_FIRST = timedelta(seconds=30)
SWEEP_RETRY_MAX = timedelta(hours=1)


def _sweep_delay(attempts: int) -> timedelta:
    return min(SWEEP_RETRY_FIRST * (1 << min(attempts, 16)), SWEEP_RETRY_MAX)


@functools.cache
def _push_back() -> Update:
    table = table_of(Payment)
    return (
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values(sweep_at=bindparam("b_at"), sweep_attempts=bindparam("b_attempts"))
    )


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

    async def complete(self, row_id: int, lock: datetime, status: int, body: str, now: datetime) -> bool:
        """Store the response in the effect's transaction (IDEM-1), only while the claim is still this
        request's: in flight, with the lock it was claimed with (``lock``: a retry that took the key over
        after the lock expired set another). False when it is not: the caller must roll the effect back.
        The row stays locked until that transaction ends, so a take-over waits for it and then fails."""
        stmt = (
            update(IdempotencyKey)
            .where(
                IdempotencyKey.id == row_id,
                IdempotencyKey.tenant_id == self.tenant_id,
                IdempotencyKey.locked_until == lock,
                IdempotencyKey.completed_at.is_(None),
            )
            .values(response_status=status, response_body=body, completed_at=now, locked_until=None)
        )
        return bool((await self.session.execute(stmt)).rowcount)  # type: ignore[attr-defined]

    async def release(self, row_id: int, lock: datetime) -> None:
        """Forget an in-flight key whose request failed before any effect, so a retry runs afresh; never
        a claim a retry took over meanwhile (its lock is another)."""
        await self.session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.id == row_id,
                IdempotencyKey.locked_until == lock,
                IdempotencyKey.completed_at.is_(None),
            )
        )


@functools.cache
def _pg_claim() -> Insert:
    """The PostgreSQL claim, built once (it is on every create's path; only the values change).

    IDEM-4: a claim lost in a crash is harmless (no effect ran; the retry claims again), so its commit
    need not wait for the WAL flush. set_config(..., true) is SET LOCAL as an expression: in RETURNING
    it runs inside the INSERT (no extra round trip) and holds until this claim's transaction commits.
    With no row inserted nothing is written, so nothing needs relaxing.
    """
    table = table_of(IdempotencyKey)
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
    return InsertRows(table_of(Payment), [_column_values(payment)])


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
    return InsertRows(table_of(IdempotencyKey), [row])
