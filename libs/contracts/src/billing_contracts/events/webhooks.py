"""Events published by the webhook dispatcher: what happened to a tenant's webhook endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from billing_contracts.config import CONTRACT
from billing_contracts.envelope import EventBase


class DisabledEndpoint(BaseModel):
    """The endpoint as the tenant sees it when it was disabled (API.md "Webhooks to tenants")."""

    model_config = CONTRACT

    id: str
    url: str
    description: str | None = None
    # "gone" (it answered 410) or "failing" (no success for the configured period).
    disabled_reason: str
    failing_since: datetime | None = None
    disabled_at: datetime


class EndpointDisabledData(BaseModel):
    model_config = CONTRACT

    endpoint: DisabledEndpoint


class EndpointDisabledV1(EventBase):
    """The dispatcher disabled one of the tenant's endpoints on its own (410, or failing too long). The
    same event, with the same id, goes to the tenant's other endpoints as a webhook and into the
    tenant's event log (``GET /v1/events``)."""

    source: str = "webhooks"
    event_type: Literal["endpoint.disabled"] = "endpoint.disabled"
    data: EndpointDisabledData


WEBHOOK_EVENTS: tuple[type[EventBase], ...] = (EndpointDisabledV1,)
