"""Tables of reconciliation-svc: the projection of our payments and refunds and of what the providers
told us (fed by events, rebuilt from payments-svc's log), with the janitor's per-object schedule; the
discrepancies found and their audit trail; the inbox. Every timestamp is UTC, every amount minor units."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from billing_runtime.db import UTCDateTime, new_metadata
from billing_runtime.heartbeats import heartbeat_table
from billing_runtime.inbox import inbox_table
from billing_runtime.outbox import outbox_table
from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from reconciliation_svc.domain.discrepancies import DISCREPANCY_KINDS, DISCREPANCY_STATES


def _one_of(column: str, values: frozenset[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in sorted(values))})"


class Base(DeclarativeBase):
    metadata = new_metadata()


metadata = Base.metadata
inbox = inbox_table(metadata)
# Every process of the service beats here (billing_runtime.heartbeats): the status endpoint's workers.
heartbeats = heartbeat_table(metadata)
# The service publishes nothing yet (its unit of work refuses events); the table is there so that it
# can start (e.g. a discrepancy event for alerting) without a new pattern, as in the dispatcher.
outbox = outbox_table(metadata)


class _JanitorSchedule:
    """The janitor's schedule of one pending object (REC-7): due at ``next_check_at`` (None: not
    pending, never asked), asked ``checks`` times so far, with the last answer."""

    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    checks: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # succeeded | failed | pending | not_found | unavailable | error (the sync endpoint's answer).
    last_result: Mapped[str | None] = mapped_column(String(32))


class ReconPayment(_JanitorSchedule, Base):
    """Our payment as payments-svc last told us (the newest ``sequence`` wins, REC-2)."""

    __tablename__ = "recon_payments"
    __table_args__ = (
        Index("ix_recon_payments_due", "next_check_at", postgresql_where=text("next_check_at IS NOT NULL")),
        Index("ix_recon_payments_provider_reference", "provider", "provider_reference"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    livemode: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    amount_refunded: Mapped[int] = mapped_column(BigInteger)
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_reference: Mapped[str | None] = mapped_column(Text)
    provider_account_id: Mapped[str | None] = mapped_column(String(40))
    last_sequence: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    succeeded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the payment entered PROVIDER_PENDING (None in any other state): the janitor's clock.
    pending_since: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ReconRefund(_JanitorSchedule, Base):
    """Our refund as payments-svc last told us (the newest ``sequence`` wins, REC-2)."""

    __tablename__ = "recon_refunds"
    __table_args__ = (
        Index("ix_recon_refunds_due", "next_check_at", postgresql_where=text("next_check_at IS NOT NULL")),
        Index("ix_recon_refunds_payment_id", "payment_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    payment_id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    livemode: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_refund_id: Mapped[str | None] = mapped_column(Text)
    last_sequence: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReconProviderTransaction(Base):
    """A provider's verdict on a payment attempt (``provider.payment.*``), the latest observed (REC-3)."""

    __tablename__ = "recon_provider_transactions"
    __table_args__ = (Index("ix_recon_provider_transactions_payment_id", "payment_id"),)

    provider_transaction_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    payment_id: Mapped[str] = mapped_column(String(40))
    provider: Mapped[str] = mapped_column(String(32))
    provider_reference: Mapped[str | None] = mapped_column(Text)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # succeeded | failed
    status: Mapped[str] = mapped_column(String(16))
    # callback | status_check
    observed_via: Mapped[str] = mapped_column(String(16))
    # The provider account the attempt went through (None for the sandbox and for events published
    # before outcomes carried it); files the payment under its account (recon_payments).
    account_id: Mapped[str | None] = mapped_column(String(40))
    # The event's occurred_at: orders the verdicts of one transaction (the later observation wins).
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReconProviderRefund(Base):
    """A provider's verdict on a refund (``provider.refund.updated``), the latest by the provider's
    clock, a final one never replaced by a pending one (REC-3). ``key`` is our refund id, or
    ``<provider>:<provider_refund_id>`` for a refund the provider started on its own."""

    __tablename__ = "recon_provider_refunds"
    __table_args__ = (Index("ix_recon_provider_refunds_payment_id", "payment_id"),)

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    refund_id: Mapped[str | None] = mapped_column(String(40))
    provider_refund_id: Mapped[str | None] = mapped_column(Text)
    payment_id: Mapped[str] = mapped_column(String(40))
    provider: Mapped[str] = mapped_column(String(32))
    provider_transaction_id: Mapped[str] = mapped_column(String(64))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # pending | succeeded | failed
    status: Mapped[str] = mapped_column(String(16))
    observed_via: Mapped[str] = mapped_column(String(16))
    provider_updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReconDispute(Base):
    """A payer's dispute of one of our payments as the provider reported it (``provider.dispute.updated``),
    kept for the money it moved: the disputed amount withdrawn from the merchant (money out) and, for a
    dispute won, reinstated (money back). The states of one dispute arrive in any order, so the
    movements are kept as times every order agrees on (``db/projection.upsert_dispute``): the earliest
    state with the funds withdrawn, and the latest without; the funds came back when that one is later.
    The status, amount and currency are the latest state's (by the provider's clock)."""

    __tablename__ = "recon_disputes"
    __table_args__ = (Index("ix_recon_disputes_payment_id", "payment_id"),)

    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    # The provider's id of the dispute (Stripe ``dp_...``).
    provider_dispute_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    payment_id: Mapped[str] = mapped_column(String(40))
    provider_transaction_id: Mapped[str] = mapped_column(String(64))
    tenant_id: Mapped[str] = mapped_column(String(40))
    livemode: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # The provider's time of the earliest state with the funds withdrawn (None: never withdrawn).
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The provider's time of the latest state without them (None: every state had them withdrawn).
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The latest state's time: orders the states (status, amount, currency).
    provider_updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DiscrepancyRow(Base):
    """One discrepancy (domain/discrepancies.py); ``dedupe_key`` unique: a fact is recorded once (REC-1)."""

    __tablename__ = "discrepancies"
    __table_args__ = (
        Index("ix_discrepancies_state_id", "state", "id"),
        Index("ix_discrepancies_tenant_id_id", "tenant_id", "id"),
        Index("ix_discrepancies_payment_id", "payment_id"),
        CheckConstraint(_one_of("kind", DISCREPANCY_KINDS), name="kind"),
        CheckConstraint(_one_of("state", DISCREPANCY_STATES), name="state"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    provider: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[str | None] = mapped_column(String(40))
    tenant_id: Mapped[str | None] = mapped_column(String(40))
    payment_id: Mapped[str | None] = mapped_column(String(40))
    refund_id: Mapped[str | None] = mapped_column(String(40))
    provider_reference: Mapped[str | None] = mapped_column(Text)
    dedupe_key: Mapped[str] = mapped_column(Text, unique=True)
    ours: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    theirs: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    detail: Mapped[str] = mapped_column(Text)
    # open | resolved | ignored
    state: Mapped[str] = mapped_column(String(16))
    state_reason: Mapped[str | None] = mapped_column(Text)
    changed_by: Mapped[str | None] = mapped_column(Text)
    changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    run_id: Mapped[str | None] = mapped_column(String(40))
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DiscrepancyChange(Base):
    """The audit trail: one row per state change of a discrepancy, never updated or deleted (REC-5)."""

    __tablename__ = "discrepancy_changes"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    discrepancy_id: Mapped[str] = mapped_column(String(40), ForeignKey("discrepancies.id"), index=True)
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    changed_by: Mapped[str] = mapped_column(Text)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
