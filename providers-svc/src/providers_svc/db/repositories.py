"""Every query of the service. Repositories are built from a session by the unit of work; they may
flush, never commit."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from billing_runtime.db import table_of
from billing_runtime.uow import UnitOfWork
from billing_runtime.writes import (
    InsertRows,
    Precondition,
    UpdateRows,
    row_unchanged,
)
from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from providers_svc.db.models import AnomalyRow, ProviderEventRow, ProviderTransactionRow
from providers_svc.domain.transactions import Transaction, TransactionStatus


@functools.cache
def _transaction_by_id() -> Select[Any]:
    table = table_of(ProviderTransactionRow)
    return select(*table.c).where(table.c.id == bindparam("id"))


async def transaction_snapshot(uow: UnitOfWork, txn_id: str) -> Transaction | None:
    """The transaction as it is now, unlocked; change it only with writes guarded by
    ``transaction_unchanged``. On PostgreSQL outside any transaction and without the ORM's loading
    machinery: every provider callback starts here."""
    rows = await uow.read_unlocked(_transaction_by_id(), {"id": txn_id})
    return transaction_from_row(rows[0]) if rows else None


def transaction_unchanged(txn: Transaction) -> Precondition:
    """ "The transaction is still exactly as read" (every change stamps ``updated_at``), checked with
    its row locked in the statement that writes."""
    values = {"id": txn.id, "status": txn.status.value, "updated_at": txn.updated_at}
    return row_unchanged(table_of(ProviderTransactionRow), values)


async def provider_event_seen(
    uow_factory: Callable[[], UnitOfWork], provider: str, external_id: str
) -> tuple[bool, str | None]:
    """Whether ``(provider, external_id)`` was recorded (a guarded write that wrote nothing), and the
    result stored with it."""
    async with uow_factory() as uow:
        stmt = select(ProviderEventRow.result).where(
            ProviderEventRow.provider == provider, ProviderEventRow.external_id == external_id
        )
        row = (await uow.session.execute(stmt)).first()
        return (False, None) if row is None else (True, row[0])


def transaction_from_row(row: Mapping[str, Any]) -> Transaction:
    """A transaction from a driver row holding its columns by name (other columns, as a join's, are
    ignored)."""
    return to_transaction(SimpleNamespace(**row))


def to_transaction(row: ProviderTransactionRow | SimpleNamespace) -> Transaction:
    return Transaction(
        id=row.id,
        tenant_id=row.tenant_id,
        payment_id=row.payment_id,
        provider=row.provider,
        amount=row.amount,
        currency=row.currency,
        status=TransactionStatus(row.status),
        order_id=row.order_id,
        description=row.description,
        return_url=row.return_url,
        redirect_url=row.redirect_url,
        provider_reference=row.provider_reference,
        failure_code=row.failure_code,
        failure_message=row.failure_message,
        expires_at=row.expires_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        livemode=bool(row.livemode),
        account_id=row.account_id,
        capture_method=row.capture_method,
        authorized_at=row.authorized_at,
        authorization_expires_at=row.authorization_expires_at,
        captured_amount=row.captured_amount,
    )


@dataclass(frozen=True)
class NewTransaction:
    tenant_id: str
    payment_id: str
    provider: str
    amount: int
    currency: str
    order_id: str | None
    description: str | None
    return_url: str | None
    expires_at: datetime
    livemode: bool = False
    # The provider account it is paid through (None for the sandbox).
    account_id: str | None = None
    capture_method: str = "automatic"


class TenantTransactionRepository:
    """Provider transactions of one tenant. Every statement starts from ``_base()``, which is already
    filtered by tenant, so no query here can reach another tenant's rows (PRV-9)."""

    def __init__(self, session: AsyncSession, tenant_id: str) -> None:
        self._session = session
        self._tenant_id = tenant_id

    def _base(self) -> Select[ProviderTransactionRow]:
        return select(ProviderTransactionRow).where(ProviderTransactionRow.tenant_id == self._tenant_id)

    async def get_for_payment(self, payment_id: str, provider: str) -> Transaction | None:
        stmt = self._base().where(
            ProviderTransactionRow.payment_id == payment_id, ProviderTransactionRow.provider == provider
        )
        row = (await self._session.execute(stmt.execution_options(populate_existing=True))).scalar_one_or_none()
        return to_transaction(row) if row is not None else None

    async def list_for_payment(self, payment_id: str) -> list[Transaction]:
        stmt = self._base().where(ProviderTransactionRow.payment_id == payment_id).order_by(ProviderTransactionRow.id)
        rows = (await self._session.execute(stmt.execution_options(populate_existing=True))).scalars().all()
        return [to_transaction(r) for r in rows]

    async def cancel_if_pending(self, txn_id: str, now: datetime) -> bool:
        """pending → cancelled, guarded in the database; False when the transaction had already moved."""
        result = await self._session.execute(
            update(ProviderTransactionRow)
            .where(
                ProviderTransactionRow.tenant_id == self._tenant_id,
                ProviderTransactionRow.id == txn_id,
                ProviderTransactionRow.status == TransactionStatus.PENDING.value,
            )
            .values(status=TransactionStatus.CANCELLED.value, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


class TransactionRepository:
    """Lookups by transaction id, for provider callbacks and the sandbox bank: the provider echoes our
    transaction id and the tenant comes from the row, never from the caller."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, txn_id: str) -> Transaction | None:
        stmt = select(ProviderTransactionRow).where(ProviderTransactionRow.id == txn_id)
        row = (await self._session.execute(stmt.execution_options(populate_existing=True))).scalar_one_or_none()
        return to_transaction(row) if row is not None else None

    async def list_for_payment(self, payment_id: str) -> list[Transaction]:
        """Every transaction of a payment, whoever's tenant: for reconciliation's platform calls,
        which name no tenant (payment ids are global)."""
        stmt = select(ProviderTransactionRow).where(ProviderTransactionRow.payment_id == payment_id)
        rows = (await self._session.execute(stmt.order_by(ProviderTransactionRow.id))).scalars().all()
        return [to_transaction(row) for row in rows]


def settle_update(
    txn_id: str,
    status: TransactionStatus,
    *,
    provider_reference: str | None,
    failure_code: str | None,
    failure_message: str | None,
    now: datetime,
    captured_amount: int | None = None,
) -> UpdateRows:
    """The write that moves a pending transaction to its final ``status`` (PRV-3: only while pending),
    for ``uow.write``."""
    values: dict[str, Any] = {
        "status": status.value,
        "failure_code": failure_code,
        "failure_message": failure_message,
        "updated_at": now,
    }
    if captured_amount is not None:
        values["captured_amount"] = captured_amount
    if provider_reference is not None:
        values["provider_reference"] = provider_reference
    return UpdateRows(
        table_of(ProviderTransactionRow), {"id": txn_id, "status": TransactionStatus.PENDING.value}, values
    )


def authorize_update(
    txn_id: str, *, expires_at: datetime | None, provider_reference: str | None, now: datetime
) -> UpdateRows:
    """The write that records a pending transaction's funds as held (under the caller's guard that the
    transaction is as read: pending, not yet authorized)."""
    values: dict[str, Any] = {"authorized_at": now, "authorization_expires_at": expires_at, "updated_at": now}
    if provider_reference is not None:
        values["provider_reference"] = provider_reference
    return UpdateRows(
        table_of(ProviderTransactionRow),
        {"id": txn_id, "status": TransactionStatus.PENDING.value},
        values,
    )


PAID_ELSEWHERE = "paid_elsewhere"


def siblings_cancel(txn: Transaction, now: datetime) -> UpdateRows:
    """The write that closes every other pending transaction of ``txn``'s payment once ``txn`` took the
    money: the payer may have opened several providers' pages, and none of them may take it a second
    time. Payme and Click ask us before they charge, and then find the order closed; a provider that
    charges first and tells us after (Octo) gets an anomaly, evidence for a refund."""
    return UpdateRows(
        table_of(ProviderTransactionRow),
        {"payment_id": txn.payment_id, "status": TransactionStatus.PENDING.value},
        {
            "status": TransactionStatus.CANCELLED.value,
            "failure_code": PAID_ELSEWHERE,
            "failure_message": f"The payment was paid through {txn.provider}",
            "updated_at": now,
        },
        where_not={"id": txn.id},
    )


@dataclass(frozen=True)
class IncomingEvent:
    provider: str
    external_id: str
    event_type: str | None
    transaction_id: str | None
    payload: str


class ProviderEventRepository:
    """The raw-event inbox (``provider_events``)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def list_for_transaction(self, txn_id: str) -> Sequence[ProviderEventRow]:
        stmt = (
            select(ProviderEventRow)
            .where(ProviderEventRow.transaction_id == txn_id)
            .order_by(ProviderEventRow.received_at, ProviderEventRow.id)
        )
        return (await self._session.execute(stmt)).scalars().all()


def provider_event_insert(row_id: str, event: IncomingEvent, now: datetime, result: str | None) -> InsertRows:
    """The ``provider_events`` row of an incoming event; as the guard of
    ``UnitOfWork.commit_unless_exists`` it makes the unit's writes happen once per
    ``(provider, external_id)``."""
    row = {
        "id": row_id,
        "provider": event.provider,
        "external_id": event.external_id,
        "event_type": event.event_type,
        "transaction_id": event.transaction_id,
        "payload": event.payload,
        "received_at": now,
        "result": result,
    }
    return InsertRows(table_of(ProviderEventRow), [row])


@dataclass(frozen=True)
class NewAnomaly:
    anomaly_id: str
    kind: str
    provider_event_id: str
    transaction: Transaction
    outcome: str | None
    amount: int | None
    currency: str | None
    detail: str | None


def anomaly_insert(new: NewAnomaly, now: datetime) -> InsertRows:
    """The ``anomalies`` row, queued beside the provider event row that is its evidence."""
    txn = new.transaction
    row = {
        "id": new.anomaly_id,
        "kind": new.kind,
        "provider": txn.provider,
        "provider_event_id": new.provider_event_id,
        "transaction_id": txn.id,
        "tenant_id": txn.tenant_id,
        "payment_id": txn.payment_id,
        "livemode": txn.livemode,
        "outcome": new.outcome,
        "amount": new.amount,
        "currency": new.currency,
        "expected_amount": txn.amount,
        "expected_currency": txn.currency,
        "transaction_status": txn.status.value,
        "detail": new.detail,
        "created_at": now,
    }
    return InsertRows(table_of(AnomalyRow), [row])
