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
    AMOUNT_MISMATCH = "amount_mismatch"


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
