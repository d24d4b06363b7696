"""The envelope every event travels in, on the bus and in the tenant event log."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from billing_contracts.config import CONTRACT


def new_event_id() -> str:
    """Return a fresh, unguessable event id (``evt_`` + 24 url-safe characters)."""
    return "evt_" + secrets.token_urlsafe(18)


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class EventBase(BaseModel):
    """Fields common to every event. Subclasses pin ``event_type`` with a ``Literal`` and type ``data``.

    Within one schema version only optional fields may be added; consumers ignore unknown fields.
    """

    model_config = CONTRACT

    event_id: str = Field(default_factory=new_event_id)
    event_type: str
    schema_version: int = 1
    occurred_at: datetime = Field(default_factory=utcnow)
    tenant_id: str
    # The tenant's mode (API.md "Test mode and live mode"): every event carries it, and so does every
    # webhook made from one. Optional within v1: samples written before it read as test mode.
    livemode: bool = False
    correlation_id: str | None = None
    causation_id: str | None = None
    # Which bounded context published it; also the first segment of the routing key.
    source: str
