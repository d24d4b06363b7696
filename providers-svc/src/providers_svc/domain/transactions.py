"""Provider transactions: one payment attempt at one provider, and the rules for moving it.

Pure: stdlib only. The database guards the transitions (conditional updates); these functions decide
what a provider's verdict means for a transaction that may already be final.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class TransactionStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self is not TransactionStatus.PENDING


class Verdict(StrEnum):
    """What a provider said about a payment attempt."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def status(self) -> TransactionStatus:
        return TransactionStatus(self.value)


class CallbackResult(StrEnum):
    """What one provider callback did. Stored on the raw event and used as a metric label."""

    APPLIED = "applied"  # moved a pending transaction and emitted an event
    DUPLICATE = "duplicate"  # the same provider event id was seen before: acknowledged, no effect
    SAME_OUTCOME = "same_outcome"  # a new event id repeating the verdict the transaction already has
    ALREADY_FINAL = "already_final"  # a failure for a transaction we had already cancelled: no money moved
    CONFLICT = "conflict"  # the provider contradicts a final state that involves money: needs a human
    IGNORED = "ignored"  # an event type we do not act on
    UNKNOWN_TRANSACTION = "unknown_transaction"
    AMOUNT_MISMATCH = "amount_mismatch"  # the amount or currency is not the transaction's: recorded, no effect
    LIVEMODE_REFUSED = "livemode_refused"  # a test-only provider spoke of a live transaction: no effect


@dataclass(frozen=True)
class Transaction:
    """A read-only snapshot of a provider transaction, what adapters and use cases work with."""

    id: str
    tenant_id: str
    payment_id: str
    provider: str
    amount: int
    currency: str
    status: TransactionStatus
    order_id: str | None
    description: str | None
    return_url: str | None
    redirect_url: str | None
    provider_reference: str | None
    failure_code: str | None
    failure_message: str | None
    expires_at: datetime
    created_at: datetime
    updated_at: datetime
    # The tenant's mode (API.md): a test-only provider (the sandbox) never moves a live transaction.
    livemode: bool = False
    # The provider account the attempt was started with; None for the sandbox, which has none.
    account_id: str | None = None

    def is_expired(self, now: datetime) -> bool:
        return now >= self.expires_at


def late_verdict_result(current: TransactionStatus, verdict: Verdict) -> CallbackResult:
    """Classify a verdict that arrives for a transaction that is already final (it never flips it)."""
    if current is verdict.status:
        return CallbackResult.SAME_OUTCOME
    if current is TransactionStatus.CANCELLED and verdict is Verdict.FAILED:
        return CallbackResult.ALREADY_FINAL
    # Money taken for a transaction we consider failed/cancelled, or a decline of one we reported
    # as paid: either way our records and the provider's disagree about money.
    return CallbackResult.CONFLICT


def anomaly_kind(txn: Transaction, verdict: Verdict, amount: int | None, currency: str | None) -> str | None:
    """The anomaly (billing_contracts ``AnomalyKind``) a verified verdict is evidence of, or None.

    Money that disagrees with ours, and a verdict contradicting a final state that involves money
    (a success for a failed or cancelled transaction, a decline of one we reported as paid). A verdict
    repeating the one the transaction has, or a failure for a cancelled one, moves no money: not one."""
    if currency != txn.currency:
        return "currency_mismatch"
    if amount != txn.amount:
        return "amount_mismatch"
    if not txn.status.is_final or late_verdict_result(txn.status, verdict) is not CallbackResult.CONFLICT:
        return None
    return "success_for_final_payment" if verdict is Verdict.SUCCEEDED else "unexpected_outcome"
