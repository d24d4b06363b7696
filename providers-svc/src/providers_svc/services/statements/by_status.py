"""Statements of the providers that list nothing but answer a status call by our id (Click's
``status_by_mti``, Octo's status call): each of the account's transactions of the period is asked,
a page at a time, a few at once, and the answers streamed in the page's order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from billing_contracts.statements import StatementRecord, StatementStatus

from providers_svc.adapters.base import PaymentProvider, StatusResult
from providers_svc.db import statements as reads
from providers_svc.domain.transactions import Transaction, TransactionStatus
from providers_svc.services.statements.period import Period
from providers_svc.services.uow import UowFactory

# Transactions read per page, and status calls in flight at once (a provider's rate limits are per
# merchant: a statement must not crowd out the payments' own calls).
STATUS_PAGE = 50
CONCURRENCY = 4

_STATUS: dict[TransactionStatus, StatementStatus] = {
    TransactionStatus.PENDING: "pending",
    TransactionStatus.SUCCEEDED: "succeeded",
    TransactionStatus.FAILED: "failed",
    TransactionStatus.CANCELLED: "cancelled",
}


async def status_records(
    uow: UowFactory, adapter: PaymentProvider, account_id: str, period: Period
) -> AsyncIterator[StatementRecord]:
    """A line per transaction the provider has a record of (it names its id); a transaction it knows
    nothing of has no line (its absence is what reconciliation compares). A provider error ends the
    stream (``ProviderUnavailableError`` / ``ProviderRejectedError`` propagate)."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def ask(txn: Transaction) -> StatusResult:
        async with gate:
            return await adapter.fetch_status(txn)

    after: reads.Cursor = None
    while True:
        async with uow() as unit:
            page = await reads.account_transactions(
                unit.session, account_id, period.start, period.end, after, STATUS_PAGE
            )
        words = await asyncio.gather(*(ask(txn) for txn in page))
        for txn, word in zip(page, words, strict=True):
            if word.provider_reference is None:
                continue
            yield StatementRecord(
                provider=adapter.name,
                account_id=account_id,
                provider_reference=word.provider_reference,
                payment_id=txn.payment_id,
                # A status answer naming no sum speaks of what was taken: a manual capture's part.
                amount=word.amount if word.amount is not None else (txn.captured_amount or txn.amount),
                currency=word.currency or txn.currency,
                status="refunded" if word.refunded else _STATUS[word.status],
                occurred_at=txn.created_at,
            )
        if len(page) < STATUS_PAGE:
            return
        after = (page[-1].created_at, page[-1].id)
