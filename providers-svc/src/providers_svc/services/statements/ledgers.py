"""Statements made from our own records: the sandbox bank's ledger (it is ours), and Payme's, for
which we are the source of truth (Payme tells us everything by calling; what we answered its
``GetStatement`` is what it holds: ``origin: "our_answers"``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

from billing_contracts.statements import StatementRecord, StatementStatus

from providers_svc.db import statements as reads
from providers_svc.db.payme import to_record
from providers_svc.protocols.payme.states import TransactionState
from providers_svc.protocols.payme.transactions import statement_row
from providers_svc.services.statements.period import PAGE, Period
from providers_svc.services.uow import UowFactory

SANDBOX = "sandbox"
# The bank's decisions as a statement says them (every outcome its ledger's CHECK allows). "pending"
# stays pending until its callback is due; a manual capture's hold ("authorized") took nothing yet.
SANDBOX_STATUS: dict[str, StatementStatus] = {
    "succeed": "succeeded",
    "decline": "failed",
    "pending": "succeeded",
    "cancelled": "cancelled",
    "authorized": "pending",
    "captured": "succeeded",
}
_PAYME_STATUS: dict[int, StatementStatus] = {
    int(TransactionState.CREATED): "pending",
    int(TransactionState.PERFORMED): "succeeded",
    int(TransactionState.CANCELLED): "cancelled",
    int(TransactionState.CANCELLED_AFTER_PERFORM): "refunded",
}


async def sandbox_records(uow: UowFactory, period: Period, now: datetime) -> AsyncIterator[StatementRecord]:
    after: reads.Cursor = None
    while True:
        async with uow() as unit:
            page = await reads.sandbox_charges(unit.session, period.start, period.end, after, PAGE)
        for charge, txn in page:
            status = SANDBOX_STATUS[charge.outcome]
            # A capture took what it took (the rest released), as our payment holds it.
            taken = (charge.captured_amount or txn.amount) if charge.outcome == "captured" else txn.amount
            if charge.outcome == "pending" and charge.due_at is not None and charge.due_at > now:
                status = "pending"
            yield StatementRecord(
                provider=SANDBOX,
                account_id=SANDBOX,
                # The bank keys its records by our transaction id (it has no id of its own).
                provider_reference=txn.id,
                payment_id=txn.payment_id,
                amount=taken,
                currency=txn.currency,
                status=status,
                occurred_at=charge.created_at,
            )
        if len(page) < PAGE:
            return
        after = (page[-1][0].created_at, page[-1][0].transaction_id)


async def payme_records(
    uow: UowFactory, account_id: str, account_field: str, period: Period
) -> AsyncIterator[StatementRecord]:
    after: reads.Cursor = None
    while True:
        async with uow() as unit:
            page = await reads.payme_transactions(
                unit.session, account_id, period.start_ms, period.last_ms, after, PAGE
            )
        for row in page:
            # The very row GetStatement answers for this transaction.
            answered = statement_row(to_record(row).record, account_field=account_field)
            account = answered["account"]
            payment_id = account.get(account_field) if isinstance(account, dict) else None
            yield StatementRecord(
                provider="payme",
                account_id=account_id,
                provider_reference=str(answered["id"]),
                payment_id=str(payment_id) if payment_id is not None else None,
                amount=int(str(answered["amount"])),  # tiyin: UZS's minor unit
                currency="UZS",
                status=_PAYME_STATUS[int(str(answered["state"]))],
                occurred_at=datetime.fromtimestamp(int(str(answered["time"])) / 1000, UTC),
                origin="our_answers",
            )
        if len(page) < PAGE:
            return
        after = (page[-1].time, page[-1].payme_id)
