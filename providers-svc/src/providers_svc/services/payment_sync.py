"""Reconciliation's heal of a missed callback (``POST /internal/payments/{payment_id}/sync``): ask the
provider of each open transaction of the payment what happened, and record a final word exactly as
that provider's callback would have (``services.callbacks.handle_notice``: the same inbox row, the
same guarded write, the same outcome event, with ``observed_via: "status_check"``).

Exactly once whatever the timing: a sync racing the real callback and a sync repeated both go
through the guard on the transaction as read, so one of them applies and the others find it final
(``same_outcome``) and publish nothing. The inbox key ``status_check:<ptx>:<verdict>`` records a
provider's contradiction of a final state (an anomaly) once however often it is asked."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from billing_contracts.envelope import utcnow
from billing_runtime.problems import ProblemError

from providers_svc.adapters.base import (
    OperationNotSupportedError,
    PaymentProvider,
    ProviderRejectedError,
    ProviderUnavailableError,
    StatusResult,
)
from providers_svc.db.click import reservation_move, reservation_unchanged, reservations_of
from providers_svc.domain.transactions import CallbackResult, Transaction, TransactionStatus, Verdict
from providers_svc.protocols.click.records import PrepareState
from providers_svc.services.callbacks import Companion, ProviderNotice, handle_notice
from providers_svc.services.directory import ProviderDirectory
from providers_svc.services.uow import UowFactory

log = logging.getLogger(__name__)

SyncStatus = Literal["succeeded", "failed", "pending"]
_RETRY_AFTER = {"Retry-After": "5"}
# Which transaction of the payment the answer names, when it has several: money taken first.
_RANK: dict[SyncStatus, int] = {"succeeded": 0, "pending": 1, "failed": 2}


@dataclass(frozen=True)
class Synced:
    """The provider's word on one transaction, and whether this sync published an outcome for it."""

    payment_id: str
    provider: str
    status: SyncStatus
    published: bool
    # What the inbox made of it (a metric label): ``applied``, ``same_outcome``, ``recorded`` (ours
    # already final, not asked), ``pending``...
    result: str


@dataclass(frozen=True)
class PaymentSync:
    uow: UowFactory
    directory: ProviderDirectory
    clock: Callable[[], datetime] = utcnow

    async def sync(self, payment_id: str) -> Synced:
        """Sync every transaction of the payment; the answer names the one whose money matters most
        (a success, else one still pending, else a failure). 404 ``transaction_not_found`` when
        no provider was ever asked to take the payment; 503 ``provider_unavailable`` when a provider
        could not say (nothing was recorded for that transaction)."""
        async with self.uow() as unit:
            transactions = await unit.transactions.list_for_payment(payment_id)
        if not transactions:
            raise ProblemError(404, "transaction_not_found", "No provider transaction for this payment")
        results = [await self._one(txn) for txn in transactions]
        best = min(results, key=lambda r: _RANK[r.status])
        return Synced(
            payment_id=payment_id,
            provider=best.provider,
            status=best.status,
            published=any(r.published for r in results),
            result=best.result,
        )

    async def _one(self, txn: Transaction) -> Synced:
        if txn.status is TransactionStatus.SUCCEEDED:
            # Recorded from the provider's own word, and published with it: nothing to heal.
            return self._synced(txn, "succeeded", "recorded")
        if txn.status is TransactionStatus.FAILED:
            return self._synced(txn, "failed", "recorded")
        if txn.redirect_url is None:
            # Never started at the provider (its start failed): no payer saw a page, no money moved.
            return self._synced(txn, "pending" if txn.status is TransactionStatus.PENDING else "failed", "not_started")
        # Pending, or cancelled by us: a provider that took the money anyway is evidence (an anomaly).
        adapter = await self.directory.for_transaction(txn)
        if adapter is None:
            raise ProblemError(
                503, "provider_unavailable", f"Provider {txn.provider!r} is not enabled", headers=_RETRY_AFTER
            )
        word = await _ask(adapter, txn)
        verdict = _verdict(txn, word)
        if verdict is None:
            mine: SyncStatus = "pending" if word.status is TransactionStatus.PENDING else "failed"
            return self._synced(txn, mine, word.status.value)
        notice = _notice(txn, adapter, word, verdict)
        if verdict is Verdict.AUTHORIZED:
            handled = await handle_notice(self.uow, notice, clock=self.clock)
            return self._synced(txn, "pending", handled.result.value)
        companion = await self._companion(txn, word) if verdict is Verdict.SUCCEEDED else None
        handled = await handle_notice(self.uow, notice, clock=self.clock, companion=companion)
        if handled.result is CallbackResult.APPLIED:
            log.warning("sync of %s healed a missed %s callback: %s", txn.id, txn.provider, verdict.value)
        return Synced(
            payment_id=txn.payment_id,
            provider=txn.provider,
            status="succeeded" if verdict is Verdict.SUCCEEDED else "failed",
            published=handled.result is CallbackResult.APPLIED,
            result=handled.result.value,
        )

    async def _companion(self, txn: Transaction, word: StatusResult) -> Companion | None:
        """Click's paid attempt is confirmed with the payment, so its late Complete is answered as a
        repeat (-4), not as a second attempt's money (an anomaly)."""
        if txn.provider != "click" or word.provider_reference is None or not word.provider_reference.isdigit():
            return None
        async with self.uow() as unit:
            attempts = await reservations_of(unit.session, txn.id)
        paid = next((view for view, paydoc in attempts if paydoc == int(word.provider_reference)), None)
        if paid is None or paid.state is not PrepareState.PREPARED:
            return None
        now = self.clock()
        return Companion(
            writes=(reservation_move(paid.merchant_prepare_id, PrepareState.CONFIRMED, now),),
            unchanged=reservation_unchanged(paid),
        )

    @staticmethod
    def _synced(txn: Transaction, status: SyncStatus, result: str) -> Synced:
        return Synced(txn.payment_id, txn.provider, status, published=False, result=result)


async def _ask(adapter: PaymentProvider, txn: Transaction) -> StatusResult:
    try:
        return await adapter.fetch_status(txn)
    except ProviderUnavailableError as exc:
        log.warning("sync of %s: %s unavailable: %s", txn.id, txn.provider, exc)
        raise ProblemError(503, "provider_unavailable", "The provider is unavailable", headers=_RETRY_AFTER) from exc
    except ProviderRejectedError as exc:
        # The provider refused to say (a revoked key, an attempt it no longer knows): nothing is
        # known, so nothing is recorded; reconciliation asks again and reports it meanwhile.
        log.error("sync of %s: %s refused the status call: %s", txn.id, txn.provider, exc.code)
        raise ProblemError(
            503, "provider_unavailable", "The provider refused the status call", headers=_RETRY_AFTER
        ) from exc
    except OperationNotSupportedError as exc:
        raise ProblemError(
            503, "provider_unavailable", "The provider has no status call", headers=_RETRY_AFTER
        ) from exc


def _verdict(txn: Transaction, word: StatusResult) -> Verdict | None:
    """A provider's final word on the payment, as its callback would have given it. A cancellation at
    the provider (ours, recorded there) is no verdict of the payer's; nor is Click's failure: it ends
    one attempt, and the payer may pay again with another (``services/click.py`` publishes nothing
    for Click's cancel either)."""
    if word.status is TransactionStatus.SUCCEEDED:
        return Verdict.SUCCEEDED
    if word.status is TransactionStatus.FAILED and txn.provider != "click":
        return Verdict.FAILED
    if word.authorized and txn.manual and txn.authorized_at is None:
        # A manual-capture hold whose callback we missed (nothing is taken yet: it only becomes AUTHORIZED).
        return Verdict.AUTHORIZED
    return None


def _notice(txn: Transaction, adapter: PaymentProvider, word: StatusResult, verdict: Verdict) -> ProviderNotice:
    # A status answer that names no amount is the provider's word on the amount it was asked for.
    amount = word.amount if word.amount is not None else txn.amount
    currency = word.currency if word.currency is not None else txn.currency
    payload = json.dumps(
        {
            "status": word.status.value,
            "provider_reference": word.provider_reference,
            "amount": amount,
            "currency": currency,
            "failure_code": word.failure_code,
        },
        separators=(",", ":"),
    )
    return ProviderNotice(
        provider=txn.provider,
        external_id=f"status_check:{txn.id}:{verdict.value}",
        event_type="status_check",
        transaction_id=txn.id,
        verdict=verdict,
        amount=amount,
        currency=currency,
        payload=payload,
        provider_reference=word.provider_reference,
        failure_code=word.failure_code,
        failure_message=word.failure_message,
        test_only=adapter.test_only,
        observed_via="status_check",
        authorization_expires_at=word.authorization_expires_at,
    )
