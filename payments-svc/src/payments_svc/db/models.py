"""Tables of payments-svc. Money is BIGINT minor units + ISO 4217 code; every timestamp is UTC."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from billing_runtime.db import UTCDateTime, new_metadata
from billing_runtime.heartbeats import heartbeat_table
from billing_runtime.inbox import inbox_table
from billing_runtime.outbox import outbox_table
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from payments_svc.domain.attempts import AttemptStatus
from payments_svc.domain.payment import CaptureMethod, PaymentStatus
from payments_svc.domain.refunds import RefundOrigin, RefundStatus


class Base(DeclarativeBase):
    metadata = new_metadata()


metadata = Base.metadata
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
# Every process of the service beats here (billing_runtime.heartbeats): the status endpoint's workers.
heartbeats = heartbeat_table(metadata)


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        Index("ix_payments_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_payments_tenant_order", "tenant_id", "order_id"),
        # The sweeper's queue: overdue payments by when they are next due for an expiry attempt.
        Index("ix_payments_status_sweep", "status", "sweep_at"),
        CheckConstraint(f"status IN ({', '.join(repr(str(s)) for s in PaymentStatus)})", name="status"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("amount_refunded >= 0 AND amount_refunded <= amount", name="amount_refunded_bounds"),
        CheckConstraint("amount_disputed >= 0 AND amount_disputed <= amount", name="amount_disputed_bounds"),
        # The refund bound, held by the database whatever the code does (REF-1): what is refunded and
        # pending never exceeds what the provider captured.
        CheckConstraint(
            "amount_refunded <= refund_reserved AND refund_reserved <= amount_captured", name="refund_reserved_bounds"
        ),
        CheckConstraint(f"capture_method IN ({', '.join(repr(str(c)) for c in CaptureMethod)})", name="capture_method"),
        CheckConstraint(
            "amount_captured >= 0 AND amount_captured <= amount AND amount_capturable >= 0"
            " AND amount_capturable <= amount",
            name="amount_captured_bounds",
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    # The tenant's mode when the payment was created, for the payment's whole life (API.md).
    livemode: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(24))
    # Grows by one with every change a receiver can see (API.md ``sequence``), in the same UPDATE.
    sequence: Mapped[int] = mapped_column(BigInteger, default=0)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    amount_refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    order_id: Mapped[str] = mapped_column(String(128))
    description: Mapped[str | None] = mapped_column(Text)
    customer: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    # None means "every provider enabled for the tenant and currency".
    allowed_providers: Mapped[list[str] | None] = mapped_column(JSON)
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_transaction_id: Mapped[str | None] = mapped_column(String(64))
    provider_reference: Mapped[str | None] = mapped_column(String(128))
    checkout_token: Mapped[str] = mapped_column(String(64), unique=True)
    return_url: Mapped[str | None] = mapped_column(Text)
    merchant_name: Mapped[str | None] = mapped_column(String(200))
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # When the sweeper next tries to expire the payment (``expires_at`` at first; pushed back on every
    # attempt, so payments a provider will not let go never starve the ones behind them).
    sweep_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sweep_attempts: Mapped[int] = mapped_column(Integer, default=0)
    # What its disputes withdrew: the sum of the amounts of its disputes whose funds the provider holds
    # (see ``Dispute.funds_withdrawn``), written by the same UPDATE as the dispute's change.
    amount_disputed: Mapped[int] = mapped_column(BigInteger, default=0)
    # The public object of its latest dispute (the one opened last), as of that dispute's last change:
    # written with it, so every read of a payment (lists included) shows it without a join.
    dispute: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # What its refunds hold: ``amount_refunded`` plus the amounts of its PENDING refunds (capped at
    # ``amount`` when a provider refunded beyond it, see ``domain/refunds.py``). A refund is accepted
    # only by the one UPDATE that raises it within ``amount`` (``db/refunds.py`` ``reserve``).
    refund_reserved: Mapped[int] = mapped_column(BigInteger, default=0)
    # How many attempts it had (its ``payment_attempts`` rows), written with each new one.
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)

    # ``automatic`` or ``manual`` (two-stage: AUTHORIZED, then captured by the tenant).
    capture_method: Mapped[str] = mapped_column(String(16), default=CaptureMethod.AUTOMATIC)
    # What the provider holds for capture while AUTHORIZED (0 otherwise), and what it took: the bound of
    # refunds (``refund_reserved_bounds``). An automatic payment captures its ``amount`` on success.
    amount_capturable: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_captured: Mapped[int] = mapped_column(BigInteger, default=0)
    # When the provider's hold lapses: the sweeper releases it then (None unless ever AUTHORIZED).
    authorization_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PaymentAttempt(Base):
    """One start of a payment at one provider (``domain/attempts.py``); the payment's ``provider*``
    columns name its active (pending) one, of which there is at most one (ATT-1)."""

    __tablename__ = "payment_attempts"
    __table_args__ = (
        Index("ix_payment_attempts_payment_created", "payment_id", "created_at", "id"),
        Index(
            "uq_payment_attempts_one_pending",
            "payment_id",
            unique=True,
            postgresql_where=text("status = 'pending'"),
        ),
        UniqueConstraint("payment_id", "provider_transaction_id", name="uq_payment_attempts_transaction"),
        CheckConstraint(
            f"status IN ({', '.join(repr(str(s)) for s in AttemptStatus)})",
            name="status",
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"))
    tenant_id: Mapped[str] = mapped_column(String(40))
    provider: Mapped[str] = mapped_column(String(32))
    provider_transaction_id: Mapped[str] = mapped_column(String(64))
    provider_reference: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PaymentStatusChange(Base):
    """Append-only history: who or what moved a payment, when, and which event announced it."""

    __tablename__ = "payment_status_history"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str] = mapped_column(String(24))
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    event_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class IdempotencyKey(Base):
    """One row per (tenant, method, path, key): in flight until the request's effect and its response
    are committed together; then replayed to every retry."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("tenant_id", "method", "path", "key", name="uq_idempotency_scope"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class TenantEvent(Base):
    """The tenant's event log (``GET /v1/events``): every event we publish, kept for backfill."""

    __tablename__ = "events"
    __table_args__ = (
        # The log's order, and the rows the sequencer has yet to place (both partial, so an insert
        # touches only the second).
        Index("ix_events_tenant_position", "tenant_id", "position", postgresql_where=text("position IS NOT NULL")),
        Index("ix_events_unsequenced", "seq", postgresql_where=text("position IS NULL")),
        # Every tenant's log in one order (GET /internal/events, reconciliation's rebuild).
        Index("ix_events_position", "position", postgresql_where=text("position IS NOT NULL")),
        # One payment's events in log order (``GET /v1/events?payment_id=``, its status history):
        # every payment, refund and dispute event carries the payment as ``data.payment``.
        Index(
            "ix_events_tenant_payment",
            "tenant_id",
            text("(data -> 'payment' ->> 'id')"),
            "position",
            postgresql_where=text("position IS NOT NULL"),
        ),
    )

    # Taken at insert, visible at commit: not an order a poller can page by (see services/event_log.py).
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    # The place in the tenant's log, given after commit by the sequencer (None until then).
    position: Mapped[int | None] = mapped_column(BigInteger)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    livemode: Mapped[bool] = mapped_column(Boolean, default=False)
    type: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PaymentAnomaly(Base):
    """Evidence of money the state machine refused (a verified success it could not apply): written
    with the consumed event's inbox row, the raw event kept, for reconciliation."""

    __tablename__ = "anomalies"
    __table_args__ = (Index("ix_anomalies_tenant_created", "tenant_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    livemode: Mapped[bool] = mapped_column(Boolean, default=False)
    kind: Mapped[str] = mapped_column(String(40))
    payment_id: Mapped[str] = mapped_column(String(40), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    expected_amount: Mapped[int | None] = mapped_column(BigInteger)
    expected_currency: Mapped[str | None] = mapped_column(String(3))
    payment_status: Mapped[str | None] = mapped_column(String(24))
    # The consumed bus event: its id, and the event itself as received.
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    event: Mapped[dict[str, Any]] = mapped_column(JSON)
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Dispute(Base):
    """A payer's dispute (chargeback) of a payment, in the provider's last state we applied. States are
    applied in ``provider_updated_at`` order (an older one never overwrites a newer one) and a closed
    dispute keeps its outcome for good: see ``services/disputes.py``."""

    __tablename__ = "disputes"
    __table_args__ = (
        UniqueConstraint("provider", "provider_dispute_id", name="uq_disputes_provider_dispute"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    livemode: Mapped[bool] = mapped_column(Boolean, default=False)
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    provider_dispute_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # The provider holds ``amount`` back from the merchant (after a lost dispute, for good): money out.
    funds_withdrawn: Mapped[bool] = mapped_column(Boolean, default=False)
    evidence_due_by: Mapped[datetime | None] = mapped_column(UTCDateTime())
    provider_created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The provider's time of the state applied last: orders the states (never goes back).
    provider_updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The provider's time of the closing state (None while open).
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Refund(Base):
    """A refund of (part of) a payment: asked by the tenant, or started by the provider itself. PENDING
    until its provider's verdict (``services/refund_verdicts.py``); SUCCEEDED and FAILED are final."""

    __tablename__ = "refunds"
    __table_args__ = (
        # A provider-started refund is found again on repeats by the provider's id of it.
        UniqueConstraint("payment_id", "provider_refund_id", name="uq_refunds_payment_provider_refund"),
        Index("ix_refunds_payment_created", "payment_id", "created_at", "id"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(f"status IN ({', '.join(repr(str(s)) for s in RefundStatus)})", name="status"),
        CheckConstraint(f"origin IN ({', '.join(repr(str(s)) for s in RefundOrigin)})", name="origin"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    livemode: Mapped[bool] = mapped_column(Boolean, default=False)
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"))
    provider: Mapped[str] = mapped_column(String(32))
    provider_refund_id: Mapped[str | None] = mapped_column(String(128))
    # Who asked for it: the tenant (our API) or the provider (a refund it started on its own).
    origin: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str | None] = mapped_column(Text)
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(Text)
    # Grows with every change of the refund (API.md ``sequence``).
    sequence: Mapped[int] = mapped_column(BigInteger, default=1)
    # The provider's time of the verdict applied last (None until the provider said anything).
    provider_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ParkedRefundVerdict(Base):
    """A refund verdict that came before its payment was captured (still CREATED/PROVIDER_PENDING: the
    consumers run 64 messages at once and Stripe orders nothing, so a dashboard refund's
    ``charge.refunded`` may come before ``payment_intent.succeeded``). Kept, under its consumed event's
    id, until the payment's status settles, then applied as if it arrived then
    (``services/parked_verdicts.py``); the queue is never held for it."""

    __tablename__ = "parked_refund_verdicts"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    payment_id: Mapped[str] = mapped_column(String(64), index=True)
    # The message as consumed (the event's JSON), replayed and kept with an anomaly as any verdict's.
    body: Mapped[str] = mapped_column(Text)
    provider_updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    parked_at: Mapped[datetime] = mapped_column(UTCDateTime())
