"""The payment state machine: every status change in the service goes through ``check_transition``.

PAY-1  Terminal statuses (SUCCEEDED, FAILED, EXPIRED, CANCELLED, REFUNDED) never change, except that
       SUCCEEDED and PARTIALLY_REFUNDED move forward through refunds.
PAY-2  Only a verified provider outcome moves a payment to SUCCEEDED or FAILED (or AUTHORIZED); an
       AUTHORIZED payment becomes SUCCEEDED only by a capture the provider confirmed (its answer to
       our capture call, or its own word that it captured).
PAY-6  A failed or cancelled attempt (``domain/attempts.py``) returns a PROVIDER_PENDING payment to
       CREATED while it has not expired (Stripe's PaymentIntent back to requires_payment_method): the
       payer may try again, and FAILED means "tried, and not paid before the checkout closed".
"""

from __future__ import annotations

from enum import StrEnum

from payments_svc.domain.errors import InvalidState


class PaymentStatus(StrEnum):
    CREATED = "CREATED"
    PROVIDER_PENDING = "PROVIDER_PENDING"
    # Manual capture: the provider holds the funds until the tenant captures or releases them.
    AUTHORIZED = "AUTHORIZED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"
    CANCELLED = "CANCELLED"
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    REFUNDED = "REFUNDED"


S = PaymentStatus

TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    # CREATED → FAILED: a payment whose last attempt failed reaches its expires_at (PAY-6).
    S.CREATED: frozenset({S.PROVIDER_PENDING, S.FAILED, S.EXPIRED, S.CANCELLED}),
    S.PROVIDER_PENDING: frozenset({S.CREATED, S.AUTHORIZED, S.SUCCEEDED, S.FAILED, S.EXPIRED, S.CANCELLED}),
    S.AUTHORIZED: frozenset({S.SUCCEEDED, S.EXPIRED, S.CANCELLED}),
    S.SUCCEEDED: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED}),
    S.PARTIALLY_REFUNDED: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED}),
    S.FAILED: frozenset(),
    S.EXPIRED: frozenset(),
    S.CANCELLED: frozenset(),
    S.REFUNDED: frozenset(),
}

PAYABLE = frozenset({S.CREATED, S.PROVIDER_PENDING})
TERMINAL = frozenset({S.SUCCEEDED, S.FAILED, S.EXPIRED, S.CANCELLED, S.PARTIALLY_REFUNDED, S.REFUNDED})
# What a tenant may cancel (an AUTHORIZED payment's hold is released at its provider first).
CANCELLABLE = frozenset({S.CREATED, S.PROVIDER_PENDING, S.AUTHORIZED})
# Statuses of a payment whose provider took money: what it captured is ``amount_captured``.
CAPTURED = frozenset({S.SUCCEEDED, S.PARTIALLY_REFUNDED, S.REFUNDED})


class CaptureMethod(StrEnum):
    """Stripe's ``capture_method``: ``automatic`` takes the money when the payer pays; ``manual`` only
    authorizes it (AUTHORIZED) and the tenant captures it later (``POST /v1/payments/{id}/capture``)."""

    AUTOMATIC = "automatic"
    MANUAL = "manual"


# The providers that can hold funds for a later capture; Payme and Click take the money at once.
MANUAL_CAPTURE_PROVIDERS = frozenset({"sandbox", "stripe", "octo"})

# The public event each status change announces.
EVENT_FOR_STATUS: dict[PaymentStatus, str] = {
    S.CREATED: "payment.created",
    S.PROVIDER_PENDING: "payment.pending",
    S.AUTHORIZED: "payment.authorized",
    S.SUCCEEDED: "payment.succeeded",
    S.FAILED: "payment.failed",
    S.EXPIRED: "payment.expired",
    S.CANCELLED: "payment.cancelled",
}


# PAY-6: back to CREATED is announced as the attempt's failure, not as a new payment.
ATTEMPT_FAILED_EVENT = "payment.attempt_failed"


def event_for(previous: PaymentStatus | None, target: PaymentStatus) -> str:
    """The public event announcing ``previous → target``."""
    if previous is S.PROVIDER_PENDING and target is S.CREATED:
        return ATTEMPT_FAILED_EVENT
    return EVENT_FOR_STATUS[target]


def can_transition(current: PaymentStatus, target: PaymentStatus) -> bool:
    return target in TRANSITIONS[current]


def check_transition(current: PaymentStatus, target: PaymentStatus) -> None:
    """Raise ``InvalidState`` (409) unless ``current → target`` is an allowed move."""
    if not can_transition(current, target):
        raise InvalidState(f"A payment in status {current} cannot become {target}.")
