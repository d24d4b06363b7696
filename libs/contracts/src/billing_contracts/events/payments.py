"""Events published by payments-svc. Their ``event_type`` is also the public webhook type."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from billing_contracts.config import CONTRACT
from billing_contracts.envelope import EventBase


class Customer(BaseModel):
    """The payer as the tenant described them."""

    model_config = CONTRACT

    email: str | None = None
    name: str | None = None
    phone: str | None = None


class DisputeSnapshot(BaseModel):
    """The public dispute object (a payer's chargeback of a payment), named after Stripe's dispute:
    the latest one of a payment is its ``dispute``, and ``dispute.*`` events carry it."""

    model_config = CONTRACT

    id: str
    object: Literal["dispute"] = "dispute"
    payment_id: str
    # Stripe's statuses: warning_needs_response, warning_under_review, needs_response, under_review
    # (open); warning_closed, won, lost, prevented (closed, final).
    status: str
    reason: str | None = None
    amount: int
    currency: str
    # True while the provider holds the disputed amount back (and for good once lost).
    funds_withdrawn: bool = False
    evidence_due_by: datetime | None = None
    # When the provider opened the dispute, and when it closed it (None while open).
    created_at: datetime
    closed_at: datetime | None = None


class PaymentSnapshot(BaseModel):
    """The public payment object (API.md) at the moment the event happened."""

    model_config = CONTRACT

    id: str
    object: Literal["payment"] = "payment"
    status: str
    amount: int
    currency: str
    amount_refunded: int = 0
    order_id: str
    description: str | None = None
    customer: Customer | None = None
    metadata: dict[str, str] = {}
    provider: str | None = None
    provider_reference: str | None = None
    checkout_token: str | None = None
    checkout_url: str | None = None
    return_url: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    livemode: bool = False
    # Grows with every change of the payment (API.md): a receiver drops an event whose sequence is not
    # above the last one it applied. Optional within v1 (0 in samples written before it).
    sequence: int = 0
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    # What the payment's disputes took out of it: the amounts the provider withdrew (held back while a
    # dispute is open, for good once it is lost; back to 0 when a won dispute's funds are reinstated).
    # Optional within v1 (0 in samples written before disputes).
    amount_disputed: int = 0
    # The payment's latest dispute (the one opened last), or None.
    dispute: DisputeSnapshot | None = None
    # How many times a payer started paying it at a provider (its ``payment_attempts``). Optional
    # within v1 (0 in samples written before attempts).
    attempt_count: int = 0

    # Manual capture (two-stage payments; optional within v1, the defaults those of a payment written
    # before it): ``automatic`` or ``manual``; what an AUTHORIZED payment holds for capture (0 otherwise);
    # what was captured (``amount`` once an automatic payment succeeded; refunds are bounded by it); and
    # when the provider's hold lapses (None unless the payment was ever AUTHORIZED).
    capture_method: str = "automatic"
    amount_capturable: int = 0
    amount_captured: int = 0
    authorization_expires_at: datetime | None = None


class PaymentAttemptSnapshot(BaseModel):
    """The public payment attempt object: one start of a payment at one provider (Stripe's model of a
    PaymentIntent's charges). ``status``: pending, succeeded, failed, cancelled, abandoned (the payer
    switched to another provider and the attempt was voided at its provider)."""

    model_config = CONTRACT

    id: str
    object: Literal["payment_attempt"] = "payment_attempt"
    payment_id: str
    provider: str
    status: str
    provider_reference: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    created_at: datetime
    updated_at: datetime


class PaymentData(BaseModel):
    """``data`` of every ``payment.*`` event."""

    model_config = CONTRACT

    payment: PaymentSnapshot


class PaymentAttemptData(PaymentData):
    """``data`` of ``payment.attempt_failed``: the payment (payable again) and the attempt that failed."""

    attempt: PaymentAttemptSnapshot


class _PaymentEvent(EventBase):
    source: str = "payments"
    data: PaymentData


class PaymentCreatedV1(_PaymentEvent):
    """A payment was created (status CREATED)."""

    event_type: Literal["payment.created"] = "payment.created"


class PaymentPendingV1(_PaymentEvent):
    """The payer chose a provider; the payment waits for the provider's answer."""

    event_type: Literal["payment.pending"] = "payment.pending"


class PaymentAuthorizedV1(_PaymentEvent):
    """The provider holds the payer's funds for a manual-capture payment: the tenant captures (all or
    part of ``amount_capturable``) or cancels it before ``authorization_expires_at``."""

    event_type: Literal["payment.authorized"] = "payment.authorized"


class PaymentSucceededV1(_PaymentEvent):
    """The provider confirmed the payment."""

    event_type: Literal["payment.succeeded"] = "payment.succeeded"


class PaymentFailedV1(_PaymentEvent):
    """The payment could not be paid: its last attempt failed and the checkout closed (``expires_at``),
    or the provider declined it after it expired. Carries the last attempt's failure."""

    event_type: Literal["payment.failed"] = "payment.failed"


class PaymentAttemptFailedV1(_PaymentEvent):
    """The provider declined or cancelled the payment's active attempt before the payment expired: the
    payment is CREATED again (payable with any offered provider) and keeps the attempt's failure."""

    event_type: Literal["payment.attempt_failed"] = "payment.attempt_failed"
    data: PaymentAttemptData


class PaymentExpiredV1(_PaymentEvent):
    """The payment was not paid before ``expires_at``."""

    event_type: Literal["payment.expired"] = "payment.expired"


class PaymentCancelledV1(_PaymentEvent):
    """The tenant cancelled the payment."""

    event_type: Literal["payment.cancelled"] = "payment.cancelled"


PAYMENT_EVENTS: tuple[type[_PaymentEvent], ...] = (
    PaymentCreatedV1,
    PaymentPendingV1,
    PaymentAuthorizedV1,
    PaymentSucceededV1,
    PaymentFailedV1,
    PaymentExpiredV1,
    PaymentCancelledV1,
    PaymentAttemptFailedV1,
)
