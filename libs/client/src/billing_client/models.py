"""Typed views of the API's objects (API.md).

The API grows by extension (new fields, new statuses, new event types), so every model keeps the fields
it does not know (``model_extra``) instead of failing on them, and statuses and types are plain strings
with the known values as constants beside them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class APIObject(BaseModel):
    """Base of every object the API returns: unknown fields are kept, nothing is validated strictly."""

    model_config = ConfigDict(extra="allow", frozen=True)


class PaymentStatus:
    """The payment statuses known to this client (a newer platform may answer others)."""

    CREATED = "CREATED"
    PROVIDER_PENDING = "PROVIDER_PENDING"
    AUTHORIZED = "AUTHORIZED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"
    CANCELLED = "CANCELLED"
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    REFUNDED = "REFUNDED"


class Customer(APIObject):
    email: str | None = None
    name: str | None = None
    phone: str | None = None


class Payment(APIObject):
    id: str
    object: str = "payment"
    status: str
    amount: int
    currency: str
    amount_refunded: int = 0
    order_id: str | None = None
    description: str | None = None
    customer: Customer | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    provider: str | None = None
    provider_reference: str | None = None
    checkout_token: str | None = None
    checkout_url: str | None = None
    return_url: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    livemode: bool | None = None
    sequence: int | None = None
    # Manual capture (an extension of API.md): the payment waits AUTHORIZED until captured.
    capture_method: str | None = None
    amount_capturable: int | None = None
    amount_captured: int | None = None
    authorization_expires_at: datetime | None = None
    # Disputes (an extension of API.md): kept as received.
    amount_disputed: int | None = None
    dispute: dict[str, Any] | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    expires_at: datetime | None = None


class PaymentAttempt(APIObject):
    """One try at paying a payment through one provider."""

    id: str
    object: str = "payment_attempt"
    payment_id: str
    provider: str | None = None
    status: str
    provider_reference: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Refund(APIObject):
    id: str
    object: str = "refund"
    payment_id: str
    amount: int
    currency: str
    status: str
    reason: str | None = None
    provider: str | None = None
    provider_refund_id: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    livemode: bool | None = None
    sequence: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class WebhookEndpoint(APIObject):
    id: str
    object: str = "webhook_endpoint"
    url: str
    events: list[str] = Field(default_factory=list)
    description: str | None = None
    enabled: bool | None = None
    disabled_reason: str | None = None
    livemode: bool | None = None
    # Only in the answers to create and rotate-secret: the secret is shown once.
    secret: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class DeliveryAttempt(APIObject):
    number: int
    started_at: datetime | None = None
    outcome: str | None = None
    status_code: int | None = None
    error: str | None = None
    latency_ms: int | None = None
    response_body: str | None = None
    manual: bool | None = None


class WebhookDelivery(APIObject):
    id: str
    object: str = "webhook_delivery"
    endpoint_id: str
    event_id: str
    event_type: str
    status: str
    attempt_count: int = 0
    next_attempt_at: datetime | None = None
    last_attempt_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    livemode: bool | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    # Only when retrieved one by one: the event as sent and every attempt.
    event: dict[str, Any] | None = None
    attempts: list[DeliveryAttempt] = Field(default_factory=list)


class Event(APIObject):
    """An entry of the tenant's event log, and the body of every webhook."""

    id: str
    object: str = "event"
    type: str
    livemode: bool | None = None
    created_at: datetime | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def payment(self) -> Payment | None:
        """``data.payment`` as a Payment (payment and refund events carry it)."""
        raw = self.data.get("payment")
        return Payment.model_validate(raw) if isinstance(raw, dict) else None

    @property
    def refund(self) -> Refund | None:
        """``data.refund`` as a Refund (refund events carry it)."""
        raw = self.data.get("refund")
        return Refund.model_validate(raw) if isinstance(raw, dict) else None


class DeletedObject(APIObject):
    id: str
    object: str
    deleted: bool


class WebhookReplay(APIObject):
    object: str = "webhook_replay"
    endpoint_id: str
    replayed: int


class FieldError(APIObject):
    field: str | None = None
    message: str | None = None


class Problem(APIObject):
    """An RFC 9457 problem+json body: branch on ``code``, never on ``title`` or ``detail``."""

    type: str = "about:blank"
    title: str | None = None
    status: int | None = None
    code: str | None = None
    detail: str | None = None
    errors: list[FieldError] = Field(default_factory=list)
    request_id: str | None = None


class AccessTokenGrant(APIObject):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - the scheme, not a secret
    expires_in: int | None = None
