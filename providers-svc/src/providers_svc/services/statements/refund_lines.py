"""A statement's refund lines (``kind: "refund"``), for the providers that list no refunds of their own
(Stripe's are its refund balance transactions: ``stripe_lists``). Each comes from what the provider can
tell of a refund:

- the sandbox: its bank's answers, which are ours (``provider_refunds``), as they stand;
- Payme: the performed transactions it cancelled (state -2, ``payme_reversals``), as we answered them;
- Click, Octo: each refund of the account that the provider answered, asked of the provider again
  (``RefundStatements.refund_on_statement``: read-only); a refund it has no record of has no line.

A refund belongs to the period in which it last changed (our side's rule: reconciliation-svc places a
refund by its last change); Payme's reversals by their cancel time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Literal

from billing_contracts.statements import StatementRecord, StatementStatus

from providers_svc.adapters.base import RefundResult, RefundStatements
from providers_svc.db import statements as reads
from providers_svc.domain.refunds import Refund, RefundStatus
from providers_svc.domain.transactions import Transaction
from providers_svc.services.statements.period import PAGE, Period
from providers_svc.services.uow import UowFactory

# Refunds read per page when each is asked of the provider, and calls in flight at once (the status
# statement's own bounds: a statement must not crowd out the payments' calls).
ASKED_PAGE = 50
CONCURRENCY = 4

_ANSWERED: dict[str, StatementStatus] = {"pending": "pending", "succeeded": "succeeded", "failed": "failed"}
# The sandbox bank's answer is the row's status (a ``requested`` row is never read: ``answered_refunds``).
_BANK: dict[RefundStatus, Literal["pending", "succeeded", "failed"]] = {
    RefundStatus.PENDING: "pending",
    RefundStatus.SUCCEEDED: "succeeded",
    RefundStatus.FAILED: "failed",
}


def refund_line(provider: str, account_id: str, refund: Refund, word: RefundResult) -> StatementRecord:
    """The provider's ``word`` on one of our refunds as a statement line, under the provider's refund id
    where it gave one. The sum is ours: neither Click's nor Octo's answer names one (Click reverses
    whole payments only, and a refund of another sum is refused before it is sent)."""
    return StatementRecord(
        provider=provider,
        account_id=account_id,
        kind="refund",
        provider_reference=word.provider_refund_id or refund.provider_refund_id or refund.id,
        payment_id=refund.payment_id,
        refund_id=refund.id,
        amount=refund.amount,
        currency=refund.currency,
        status=_ANSWERED[word.status],
        occurred_at=refund.provider_updated_at or refund.updated_at,
    )


async def _pages(
    uow: UowFactory, provider: str, account_id: str | None, period: Period, size: int
) -> AsyncIterator[list[tuple[Refund, Transaction]]]:
    after: reads.Cursor = None
    while True:
        async with uow() as unit:
            page = await reads.answered_refunds(
                unit.session, provider, account_id, period.start, period.end, after, size
            )
        if page:
            yield page
        if len(page) < size:
            return
        last = page[-1][0]
        after = (last.updated_at, last.id)


async def sandbox_refund_records(uow: UowFactory, period: Period) -> AsyncIterator[StatementRecord]:
    """The sandbox bank's answers to our refunds (the bank keeps no ledger but ours)."""
    async for page in _pages(uow, "sandbox", None, period, PAGE):
        for refund, _txn in page:
            word = RefundResult(_BANK[refund.status], refund.provider_refund_id)
            yield refund_line("sandbox", "sandbox", refund, word)


async def asked_refund_records(
    uow: UowFactory, adapter: RefundStatements, provider: str, account_id: str, period: Period
) -> AsyncIterator[StatementRecord]:
    """Each refund of the account that the provider answered, asked of it again, a page at a time,
    a few at once; the answers streamed in the page's order. A provider error ends the stream."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def ask(refund: Refund, txn: Transaction) -> RefundResult | None:
        async with gate:
            return await adapter.refund_on_statement(txn, refund)

    async for page in _pages(uow, provider, account_id, period, ASKED_PAGE):
        words = await asyncio.gather(*(ask(refund, txn) for refund, txn in page))
        for (refund, _txn), word in zip(page, words, strict=True):
            if word is not None:
                yield refund_line(provider, account_id, refund, word)


async def payme_refund_records(uow: UowFactory, account_id: str, period: Period) -> AsyncIterator[StatementRecord]:
    """Payme's refunds: every performed transaction it cancelled in the period, for its whole amount,
    under its own transaction id (the ``provider_refund_id`` payments-svc holds for the refund)."""
    after: reads.Cursor = None
    while True:
        async with uow() as unit:
            page = await reads.payme_reversals(unit.session, account_id, period.start_ms, period.last_ms, after, PAGE)
        for reversal in page:
            yield StatementRecord(
                provider="payme",
                account_id=account_id,
                kind="refund",
                provider_reference=reversal.payme_id,
                payment_id=reversal.payment_id,
                refund_id=reversal.refund_id,
                amount=reversal.amount,
                currency=reversal.currency,
                status="succeeded",
                occurred_at=datetime.fromtimestamp(reversal.cancel_time / 1000, UTC),
                origin="our_answers",
            )
        if len(page) < PAGE:
            return
        after = (page[-1].cancel_time, page[-1].payme_id)
