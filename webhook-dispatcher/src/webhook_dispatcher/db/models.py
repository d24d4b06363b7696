"""Tables of webhook-dispatcher: endpoints (secrets encrypted), events as sent, one delivery per
(event, endpoint) and one attempt row per HTTP request made. Every timestamp is UTC."""

from __future__ import annotations

from datetime import datetime

from billing_runtime.db import UTCDateTime, new_metadata
from billing_runtime.heartbeats import heartbeat_table
from billing_runtime.inbox import inbox_table
from billing_runtime.outbox import outbox_table
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    metadata = new_metadata()


metadata = Base.metadata
# The unit of work writes events it emits here; the dispatcher emits none on the bus yet, but keeping
# the table lets it start publishing (e.g. endpoint.disabled for other services) without a new pattern.
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
# Every process of the service beats here (billing_runtime.heartbeats): the status endpoint's workers.
heartbeats = heartbeat_table(metadata)


class Endpoint(Base):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_tenant_created", "tenant_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    # ["*"] or explicit event types.
    events: Mapped[list[str]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Why the platform disabled it ("gone": answered 410; "failing": no success for too long).
    disabled_reason: Mapped[str | None] = mapped_column(String(32))
    secret_encrypted: Mapped[str] = mapped_column(Text)
    # The secret before the last rotation, still signed with until previous_secret_expires_at.
    previous_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Start of the current run of failures (None after a success); drives the auto-disable.
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Soft delete: the delivery log of a deleted endpoint stays consistent.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The tenant's mode, from the internal token that created it (API.md); endpoint.disabled carries it.
    livemode: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class WebhookEvent(Base):
    """The body exactly as it is signed and sent; identical bytes on every attempt."""

    __tablename__ = "webhook_events"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40), index=True)
    type: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The event envelope's livemode (also the body's top-level ``livemode``).
    livemode: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Delivery(Base):
    """One per (event, endpoint). Retries and manual resends add attempts to the same row."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "endpoint_id", name="uq_webhook_deliveries_event_endpoint"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        # An endpoint's oldest due deliveries, read by the claim without touching the rest of its backlog.
        Index("ix_webhook_deliveries_endpoint_due", "endpoint_id", "status", "next_attempt_at", "id"),
        # Only leased rows (a handful at any time): whose endpoints another worker holds.
        Index(
            "ix_webhook_deliveries_leased",
            "endpoint_id",
            postgresql_where=text("claim_token IS NOT NULL"),
        ),
        Index("ix_webhook_deliveries_tenant_created", "tenant_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id"))
    event_id: Mapped[str] = mapped_column(ForeignKey("webhook_events.id"))
    event_type: Mapped[str] = mapped_column(String(64))
    # pending | succeeded | failed
    status: Mapped[str] = mapped_column(String(16))
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    # A manual retry/replay is one more attempt, not a new schedule.
    manual: Mapped[bool] = mapped_column(Boolean, default=False)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claim_token: Mapped[str | None] = mapped_column(String(32))
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    livemode: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # A manual retry of a pending delivery (WHK-11): the automatic attempt it brought forward, resumed
    # after the manual attempt unless that one succeeds.
    resume_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Manual attempts made: the retry schedule counts automatic attempts only.
    manual_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # A manual retry asked for while an attempt was in flight: one more attempt at once after it.
    retry_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Attempt(Base):
    __tablename__ = "webhook_attempts"
    __table_args__ = (UniqueConstraint("delivery_id", "number", name="uq_webhook_attempts_delivery_number"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    # No index of its own: the unique (delivery_id, number) serves every lookup by delivery (and the
    # foreign key's checks), in attempt order.
    delivery_id: Mapped[str] = mapped_column(ForeignKey("webhook_deliveries.id"))
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # succeeded | failed
    outcome: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int | None] = mapped_column(Integer)
    # Network error, timeout, SSRF refusal or "redirect not followed": a clear reason, never a traceback.
    error: Mapped[str | None] = mapped_column(Text)
    latency_ms: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    manual: Mapped[bool] = mapped_column(Boolean, default=False)
