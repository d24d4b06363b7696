"""How a Payme decision is written (``services.payme`` decides): the row of a new transaction, the
update of a stored one, the reversal a cancel after perform records, and the paid outcome of our
transaction with the provider event behind it. Each is queued on the unit, so it goes out with the
unit's other writes in one statement."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from billing_runtime.db import table_of
from billing_runtime.ids import new_id
from billing_runtime.writes import InsertRows, UpdateRows

from providers_svc.db.payme import PaymeReversalRow, PaymeTransactionRow, record_values
from providers_svc.db.repositories import IncomingEvent, provider_event_insert
from providers_svc.domain.accounts import BoundAccount
from providers_svc.domain.transactions import CallbackResult, Transaction, Verdict
from providers_svc.protocols.payme.transactions import PaymeTransaction
from providers_svc.services.callbacks import ProviderNotice, queue_outcome
from providers_svc.services.payme_accounts import PROVIDER
from providers_svc.services.uow import ProvidersUnitOfWork


def store(unit: ProvidersUnitOfWork, row: PaymeTransactionRow, record: PaymeTransaction) -> None:
    """Queued, so it goes out in one statement with the rest of the unit's writes (one round trip)."""
    unit.write(record_update(record))


def apply_record(row: PaymeTransactionRow, record: PaymeTransaction) -> None:
    """The decided record on the loaded (locked) row: flushed as its own statement first when the unit
    commits, before the unit's queued writes and guarded insert."""
    for column, value in record_values(record).items():
        setattr(row, column, value)


def record_update(record: PaymeTransaction) -> UpdateRows:
    return UpdateRows(table_of(PaymeTransactionRow), {"id": record.transaction_id}, record_values(record))


def new_transaction_row(record: PaymeTransaction, account: BoundAccount, txn: Transaction) -> InsertRows:
    return _insert(
        PaymeTransactionRow,
        id=record.transaction_id,
        payme_id=record.payme_id,
        account_id=account.id,
        provider_transaction_id=txn.id,
        payment_id=record.payment_id,
        amount=record.amount,
        time=record.time,
        create_time=record.create_time,
        **record_values(record),
    )


def queue_paid(
    unit: ProvidersUnitOfWork, account: BoundAccount, txn: Transaction, payme_id: str, body: bytes, now: datetime
) -> InsertRows:
    """Our transaction → succeeded and its event, queued; returned: the provider event row behind them,
    which keeps the request (unique per Payme transaction, so it can guard the write)."""
    row_id = new_id("pev")
    payload = body.decode("utf-8")
    notice = ProviderNotice(
        provider=PROVIDER,
        external_id=f"{payme_id}:perform",
        event_type="PerformTransaction",
        transaction_id=txn.id,
        verdict=Verdict.SUCCEEDED,
        amount=txn.amount,
        currency=txn.currency,
        payload=payload,
        provider_reference=payme_id,
        test_only=account.test,
    )
    queue_outcome(unit, txn, notice, Verdict.SUCCEEDED, row_id, now)
    event = IncomingEvent(PROVIDER, notice.external_id, notice.event_type, txn.id, payload)
    return provider_event_insert(row_id, event, now, CallbackResult.APPLIED.value)


def reversal_row(record: PaymeTransaction, account: BoundAccount, txn: Transaction, now: datetime) -> InsertRows:
    assert record.reason is not None
    return _insert(
        PaymeReversalRow,
        id=new_id("pmr"),
        payme_transaction_id=record.transaction_id,
        payme_id=record.payme_id,
        account_id=account.id,
        provider_transaction_id=txn.id,
        tenant_id=txn.tenant_id,
        payment_id=txn.payment_id,
        livemode=txn.livemode,
        amount=txn.amount,
        currency=txn.currency,
        reason=int(record.reason),
        cancel_time=record.cancel_time,
        created_at=now,
    )


def _insert(model: type[PaymeTransactionRow | PaymeReversalRow], **values: Any) -> InsertRows:
    return InsertRows(table_of(model), [values])
