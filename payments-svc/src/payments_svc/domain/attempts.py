"""Payment attempts: one start of a payment at one provider (Stripe's charges of a PaymentIntent).

ATT-1  A payment has at most one ``pending`` attempt, its active one (the one its ``provider`` and
       ``provider_transaction_id`` name); the database holds that (a partial unique index).
ATT-2  An attempt leaves ``pending`` once: ``succeeded`` or ``failed`` / ``cancelled`` on the provider's
       word, ``abandoned`` when the payer switched provider and the attempt was voided at its provider.
ATT-3  Money is never ignored: a success for an attempt already ended is still recorded on it (it is
       the provider's word), and what it does to the payment is decided by ``services/attempt_outcomes``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from payments_svc.domain.payment import PaymentStatus


class AttemptStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ABANDONED = "abandoned"


# The provider's failure codes that mean the attempt was cancelled rather than declined: cancelled by
# the payer or the provider, or expired at the provider.
_CANCELLED_CODES = ("cancel", "expired", "timeout")


def ended_status(failure_code: str | None) -> AttemptStatus:
    """What a provider's failure makes of an attempt: ``cancelled`` when its code says so, else ``failed``."""
    code = (failure_code or "").lower()
    if any(word in code for word in _CANCELLED_CODES):
        return AttemptStatus.CANCELLED
    return AttemptStatus.FAILED


def closed_status(payment: Any) -> PaymentStatus:
    """What a payable payment becomes when its checkout closes (``expires_at``): FAILED when its last
    attempt failed (it is CREATED again, keeping that failure: PAY-6), else EXPIRED."""
    if payment.status == PaymentStatus.CREATED and payment.failure_code is not None:
        return PaymentStatus.FAILED
    return PaymentStatus.EXPIRED
