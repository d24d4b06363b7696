"""Refunds as providers-svc keeps them: one row per refund we asked a provider for, and the rules for
moving it. Pure: stdlib only.

A refund row is ``requested`` until the provider answered (a provider that could not be reached leaves
it there, to be asked again: never failed, never succeeded on our own), then ``pending`` until the
provider's final word, then ``succeeded`` or ``failed`` for good.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal


class RefundStatus(StrEnum):
    REQUESTED = "requested"  # stored, the provider not asked yet or its answer lost: ask (again)
    PENDING = "pending"  # the provider accepted it and has not finished it
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in (RefundStatus.SUCCEEDED, RefundStatus.FAILED)


# What the contract's ``provider.refund.updated`` says (billing_contracts.events.refunds).
PublishedStatus = Literal["pending", "succeeded", "failed"]


@dataclass(frozen=True)
class Refund:
    """A read-only snapshot of a ``provider_refunds`` row."""

    id: str
    tenant_id: str
    livemode: bool
    payment_id: str
    provider: str
    provider_transaction_id: str
    account_id: str | None
    amount: int
    currency: str
    reason: str | None
    status: RefundStatus
    published_status: str | None
    provider_refund_id: str | None
    failure_code: str | None
    failure_message: str | None
    attempts: int
    provider_updated_at: datetime | None
    created_at: datetime
    updated_at: datetime
    # Who holds the lease to call the provider about it (None: nobody).
    claim_token: str | None = None

    @property
    def unpublished(self) -> bool:
        """A verdict the provider gave that no ``provider.refund.updated`` carried yet."""
        return self.status is not RefundStatus.REQUESTED and self.published_status != self.status.value


# The most provider calls one refund attempt makes in sequence (a Stripe retry: the PaymentIntent,
# maybe its Checkout Session, the intent's refunds, the refund), and the tries of each (Stripe's client
# retries a failed connection once). Settings refuse a refund lease shorter than twice the worst such
# attempt, so that no second caller can claim a refund while the first one's call may still be running.
PROVIDER_CALLS_PER_REFUND_ATTEMPT = 4
TRIES_PER_PROVIDER_CALL = 2


def worst_refund_attempt(provider_timeout: float) -> float:
    """Seconds one refund attempt may take at most, each provider call bounded by ``provider_timeout``."""
    return PROVIDER_CALLS_PER_REFUND_ATTEMPT * TRIES_PER_PROVIDER_CALL * provider_timeout


def may_move(current: RefundStatus, new: RefundStatus) -> bool:
    """A final verdict is final; ``pending`` only replaces ``requested``; the same status is no move."""
    if current.is_final or new is current:
        return False
    return new is not RefundStatus.REQUESTED


# The test-mode outcome rule (README "Refunds"): a refund whose reason is one of these magic values is
# played out so by the test-only providers (the sandbox bank and the Click/Octo simulators), as
# Stripe's magic test values do; any other reason succeeds. A real provider never sees the rule.
SANDBOX_FAIL = "sandbox:fail"
SANDBOX_PENDING = "sandbox:pending"
SimulatedOutcome = Literal["fail", "pending"]
# How an adapter bound to a simulator account tells the simulator the outcome to play (never sent to a
# real provider: the simulators are ours, the header is not part of any provider's protocol).
SIMULATOR_OUTCOME_HEADER = "X-Simulator-Outcome"


def simulated_outcome(reason: str | None) -> SimulatedOutcome | None:
    """The outcome a test-only provider plays for a refund with this reason; None: it succeeds."""
    text = (reason or "").strip().lower()
    if text == SANDBOX_FAIL:
        return "fail"
    if text == SANDBOX_PENDING:
        return "pending"
    return None
