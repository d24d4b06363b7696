"""Response bodies of the webhook API. Handlers serialise through them (api/schemas.py), and the
OpenAPI document is generated from them (api/openapi.py), so the two cannot differ."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from billing_contracts.events import DisputeData, PaymentData, RefundData
from pydantic import BaseModel, ConfigDict


class _Response(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")


class WebhookEndpoint(_Response):
    id: str
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    url: str
    events: list[str]
    description: str | None
    enabled: bool
    disabled_reason: str | None
    livemode: bool
    created_at: datetime
    updated_at: datetime


class WebhookEndpointWithSecret(WebhookEndpoint):
    """The endpoint as created or rotated: its signing secret, shown this once."""

    secret: str


class WebhookEndpointList(_Response):
    object: Literal["list"] = "list"
    data: list[WebhookEndpoint]
    limit: int
    offset: int
    has_more: bool


class DeletedWebhookEndpoint(_Response):
    id: str
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    deleted: Literal[True] = True


class WebhookReplay(_Response):
    object: Literal["webhook_replay"] = "webhook_replay"
    endpoint_id: str
    replayed: int


class WebhookDelivery(_Response):
    id: str
    object: Literal["webhook_delivery"] = "webhook_delivery"
    endpoint_id: str
    event_id: str
    event_type: str
    status: Literal["pending", "succeeded", "failed"]
    attempt_count: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    livemode: bool
    created_at: datetime
    updated_at: datetime


class WebhookAttempt(_Response):
    number: int
    started_at: datetime
    outcome: str
    status_code: int | None
    error: str | None
    latency_ms: int
    # The first 2 KiB of the receiver's answer.
    response_body: str | None
    manual: bool


class WebhookDeliveryDetail(WebhookDelivery):
    """A delivery with the event's body as sent and every attempt."""

    event: dict[str, Any]
    attempts: list[WebhookAttempt]


class WebhookDeliveryList(_Response):
    object: Literal["list"] = "list"
    data: list[WebhookDelivery]
    limit: int
    offset: int
    has_more: bool


class _WebhookBody(_Response):
    """What the platform POSTs to a tenant's endpoint (signed: Standard Webhooks headers)."""

    id: str
    type: str
    created_at: datetime
    livemode: bool


class PaymentWebhook(_WebhookBody):
    data: PaymentData


class RefundWebhook(_WebhookBody):
    data: RefundData


class DisputeWebhook(_WebhookBody):
    data: DisputeData


class NoticeWebhook(_WebhookBody):
    """``webhook.test`` and ``endpoint.disabled``: about the endpoint itself."""

    data: dict[str, Any]
