"""Refunds: which verdict of a provider a refund takes, and what its refunds make of a payment.

REF-2  Only a provider's verdict makes a refund SUCCEEDED or FAILED; our API only creates it PENDING.
REF-3  A final state (SUCCEEDED, FAILED) is final: a pending verdict after it, or the same verdict
       again, changes nothing; the other final verdict (failed after succeeded, or the reverse)
       contradicts a fact we hold and is an anomaly, never applied.
REF-4  Pending verdicts are ordered by the provider's ``provider_updated_at``: an older (or equally
       old) one changes nothing. A final verdict wins over any pending one whatever its time: it
       carries the money fact, a pending one never does.
REF-5  A payment's refund totals follow from its refunds: ``amount_refunded`` is what its SUCCEEDED
       refunds returned and ``refund_reserved`` that plus its PENDING ones, both capped at the
       payment's amount (which the database refuses to exceed). Only a provider refunding beyond
       our reservations (a refund it started on its own) ever reaches the cap; what lies beyond it
       is an anomaly, recorded, never lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from payments_svc.domain.payment import PaymentStatus


class RefundStatus(StrEnum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class RefundOrigin(StrEnum):
    # Asked by the tenant through ``POST /v1/payments/{id}/refunds``.
    TENANT = "tenant"
    # Started by the provider itself (Payme's cancel-after-perform, a refund in Stripe's dashboard).
    PROVIDER = "provider"


FINAL_REFUND_STATUSES = frozenset({RefundStatus.SUCCEEDED, RefundStatus.FAILED})
# A payment the tenant may refund (more of).
REFUNDABLE = frozenset({PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED})
# A payment the provider captured, by our records: the only ones a provider's refund can be about.
CAPTURED = frozenset({PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED})

# A provider's status (``provider.refund.updated``) as a refund status.
FROM_PROVIDER = {
    "pending": RefundStatus.PENDING,
    "succeeded": RefundStatus.SUCCEEDED,
    "failed": RefundStatus.FAILED,
}


class Verdict(StrEnum):
    # The verdict moves the refund (a newer pending state, or its final one).
    APPLY = "apply"
    # A pending state not newer than the one applied (REF-4): nothing changes.
    STALE = "stale"
    # Pending, or the same final state again, for a refund already final (REF-3): nothing changes.
    FINAL = "final"
    # The other final state for a refund already final (REF-3): an anomaly, nothing changes.
    CONFLICT = "conflict"


@dataclass(frozen=True)
class RefundState:
    """One state of a refund: the one held (``provider_updated_at`` None until a provider spoke), or
    one the provider reports."""

    status: RefundStatus
    provider_updated_at: datetime | None


def verdict(held: RefundState, new: RefundState) -> Verdict:
    """What the provider's state ``new`` does to a refund held as ``held``."""
    if held.status in FINAL_REFUND_STATUSES:
        if new.status in (held.status, RefundStatus.PENDING):
            return Verdict.FINAL
        return Verdict.CONFLICT
    if new.status in FINAL_REFUND_STATUSES:
        return Verdict.APPLY
    held_at, new_at = held.provider_updated_at, new.provider_updated_at
    if held_at is not None and new_at is not None and new_at <= held_at:
        return Verdict.STALE
    return Verdict.APPLY


@dataclass(frozen=True)
class RefundTotals:
    """The payment's refund columns as its refunds make them (REF-5), and what lies beyond the cap."""

    amount_refunded: int
    refund_reserved: int
    # What SUCCEEDED refunds returned beyond the payment's amount (the provider over-refunded).
    over_refunded: int
    # What SUCCEEDED and PENDING refunds hold beyond the payment's amount.
    over_reserved: int


def totals(amount: int, succeeded: int, pending: int) -> RefundTotals:
    """The refund columns of a payment of ``amount`` whose refunds sum to ``succeeded`` and ``pending``."""
    return RefundTotals(
        amount_refunded=min(amount, succeeded),
        refund_reserved=min(amount, succeeded + pending),
        over_refunded=max(0, succeeded - amount),
        over_reserved=max(0, succeeded + pending - amount),
    )


def status_after_refunds(amount: int, amount_refunded: int) -> PaymentStatus:
    """The status of a captured payment once ``amount_refunded`` (> 0) of it went back."""
    return PaymentStatus.REFUNDED if amount_refunded >= amount else PaymentStatus.PARTIALLY_REFUNDED
