"""Events published by payments-svc. Their ``event_type`` is also the public webhook type."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from billing_contracts.envelope import EventBase


class Customer(BaseModel):
    """The payer as the tenant described them."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    email: str | None = None
    name: str | None = None
    phone: str | None = None


class PaymentSnapshot(BaseModel):
    """The public payment object (API.md) at the moment the event happened."""

    model_config = ConfigDict(frozen=True, extra="ignore")

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


class PaymentData(BaseModel):
    """``data`` of every ``payment.*`` event."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    payment: PaymentSnapshot


class _PaymentEvent(EventBase):
    source: str = "payments"
    data: PaymentData


class PaymentCreatedV1(_PaymentEvent):
    """A payment was created (status CREATED)."""

    event_type: Literal["payment.created"] = "payment.created"


class PaymentPendingV1(_PaymentEvent):
    """The payer chose a provider; the payment waits for the provider's answer."""

    event_type: Literal["payment.pending"] = "payment.pending"


class PaymentSucceededV1(_PaymentEvent):
    """The provider confirmed the payment."""

    event_type: Literal["payment.succeeded"] = "payment.succeeded"


class PaymentFailedV1(_PaymentEvent):
    """The provider declined the payment."""

    event_type: Literal["payment.failed"] = "payment.failed"


class PaymentExpiredV1(_PaymentEvent):
    """The payment was not paid before ``expires_at``."""

    event_type: Literal["payment.expired"] = "payment.expired"


class PaymentCancelledV1(_PaymentEvent):
    """The tenant cancelled the payment."""

    event_type: Literal["payment.cancelled"] = "payment.cancelled"


PAYMENT_EVENTS: tuple[type[_PaymentEvent], ...] = (
    PaymentCreatedV1,
    PaymentPendingV1,
    PaymentSucceededV1,
    PaymentFailedV1,
    PaymentExpiredV1,
    PaymentCancelledV1,
)
