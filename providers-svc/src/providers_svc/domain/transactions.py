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
    # Manual capture: the funds are held, nothing taken yet (the transaction stays pending).
    AUTHORIZED = "authorized"

    @property
    def status(self) -> TransactionStatus:
        if self is Verdict.AUTHORIZED:
            return TransactionStatus.PENDING
        return TransactionStatus(self.value)


# The providers that can hold funds for a later capture (Stripe, Octo's two-stage payments, the
# sandbox); Payme and Click take the money when the payer pays.
MANUAL_CAPTURE_PROVIDERS = frozenset({"sandbox", "stripe", "octo"})
MANUAL = "manual"


def capture_methods(provider: str) -> list[str]:
    """What ``/internal/providers`` says a provider can start with."""
    return ["automatic", MANUAL] if provider in MANUAL_CAPTURE_PROVIDERS else ["automatic"]


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
    # Manual capture (see ``ProviderTransactionRow``).
    capture_method: str = "automatic"
    authorized_at: datetime | None = None
    authorization_expires_at: datetime | None = None
    captured_amount: int | None = None

    @property
    def manual(self) -> bool:
        return self.capture_method == MANUAL

    @property
    def authorized(self) -> bool:
        """Pending, with the funds held at the provider for our capture."""
        return self.status is TransactionStatus.PENDING and self.authorized_at is not None

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
    if not _amount_fits(txn, verdict, amount):
        return "amount_mismatch"
    if not txn.status.is_final or late_verdict_result(txn.status, verdict) is not CallbackResult.CONFLICT:
        return None
    return "success_for_final_payment" if verdict is Verdict.SUCCEEDED else "unexpected_outcome"


def _amount_fits(txn: Transaction, verdict: Verdict, amount: int | None) -> bool:
    """A manual transaction's success may take part of its amount (a partial capture), and once
    captured, only what was captured; anything else names the transaction's amount."""
    if verdict is Verdict.SUCCEEDED and txn.manual and amount is not None:
        if txn.captured_amount is not None:
            return amount == txn.captured_amount
        return 0 < amount <= txn.amount
    return amount == txn.amount
