"""Tables of providers-svc. ``metadata`` is what Alembic (``migrations/env.py``) and the tests use."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from billing_runtime.db import UTCDateTime, new_metadata
from billing_runtime.heartbeats import heartbeat_table
from billing_runtime.inbox import inbox_table
from billing_runtime.outbox import outbox_table
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    metadata = new_metadata()


class ProviderTransactionRow(Base):
    """One payment attempt at one provider; ``status`` only ever leaves ``pending`` once (PRV-3)."""

    __tablename__ = "provider_transactions"
    __table_args__ = (
        # PRV-2: a payment has at most one transaction per provider, so start is idempotent.
        UniqueConstraint("payment_id", "provider"),
        CheckConstraint("status IN ('pending', 'succeeded', 'failed', 'cancelled')", name="status"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("capture_method IN ('automatic', 'manual')", name="capture_method"),
        Index("ix_provider_transactions_tenant_payment", "tenant_id", "payment_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    payment_id: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # The tenant's mode, from the caller's token at start: a test-only provider never moves a live one.
    livemode: Mapped[bool] = mapped_column(Boolean, server_default=false())
    status: Mapped[str] = mapped_column(String(16))
    order_id: Mapped[str | None] = mapped_column(String(128))
    description: Mapped[str | None] = mapped_column(Text)
    return_url: Mapped[str | None] = mapped_column(Text)
    redirect_url: Mapped[str | None] = mapped_column(Text)
    provider_reference: Mapped[str | None] = mapped_column(String(255))
    # The provider account the attempt was started with (None for the sandbox): its callbacks must come
    # from that account, and its cancel, status and refund calls use that account's credentials.
    account_id: Mapped[str | None] = mapped_column(String(40))
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Manual capture: the attempt only authorizes; a pending transaction with ``authorized_at`` holds
    # the funds until ``authorization_expires_at`` (or our capture, or its release).
    capture_method: Mapped[str] = mapped_column(String(16), server_default="automatic")
    authorized_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    authorization_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # What the provider took once succeeded (``amount`` unless a manual capture took part of it).
    captured_amount: Mapped[int | None] = mapped_column(BigInteger)


class ProviderEventRow(Base):
    """The raw-event inbox: every verified provider callback, once per provider event id (PRV-1)."""

    __tablename__ = "provider_events"
    __table_args__ = (UniqueConstraint("provider", "external_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str | None] = mapped_column(String(64))
    transaction_id: Mapped[str | None] = mapped_column(String(32), index=True)
    # The body exactly as received (after signature verification), for audits and replays.
    payload: Mapped[str] = mapped_column(Text)
    # What the callback did (domain.transactions.CallbackResult); set in the same transaction.
    result: Mapped[str | None] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Stripe's deliveries of the event accepted so far, each ``"<t>:<account id>"``: the signature's
    # timestamp and (the first by id of) the accounts whose webhook secret verified it. Stripe signs
    # every attempt afresh, so a request repeating one is a replay (services/stripe_webhooks.py).
    # None for other providers and for rows older than the column.
    deliveries: Mapped[list[str] | None] = mapped_column(ARRAY(Text))


class AnomalyRow(Base):
    """Evidence of money a verified callback brought that the transaction could not take (PRV-11): the
    provider's word against ours, linked to the raw event that carried it; one per provider event."""

    __tablename__ = "anomalies"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(48))
    provider: Mapped[str] = mapped_column(String(32))
    # The provider_events row holding the raw body; unique, so one provider event makes one anomaly.
    provider_event_id: Mapped[str] = mapped_column(String(32), unique=True)
    transaction_id: Mapped[str] = mapped_column(String(32), index=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    payment_id: Mapped[str] = mapped_column(String(64))
    livemode: Mapped[bool] = mapped_column(Boolean)
    outcome: Mapped[str | None] = mapped_column(String(16))
    amount: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    expected_amount: Mapped[int] = mapped_column(BigInteger)
    expected_currency: Mapped[str] = mapped_column(String(3))
    transaction_status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SandboxChargeRow(Base):
    """The sandbox bank's ledger: at most one decision per transaction (PRV-6), and the callback it owes.

    Persisted so a restart never loses a scheduled callback (PRV-7).
    """

    __tablename__ = "sandbox_charges"
    __table_args__ = (
        CheckConstraint(
            "outcome IN ('succeed', 'decline', 'pending', 'cancelled', 'authorized', 'captured')", name="outcome"
        ),
        # Only callbacks still owed are indexed: the sender scans nothing that was delivered long ago.
        Index(
            "ix_sandbox_charges_owed",
            "due_at",
            postgresql_where=text("delivered_at IS NULL AND gave_up_at IS NULL"),
        ),
    )

    transaction_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16))
    # What a capture of an ``authorized`` charge took (its outcome then ``captured``).
    captured_amount: Mapped[int | None] = mapped_column(BigInteger)
    # The callback: its event id stays the same across retries so the receiver can dedupe on it.
    event_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    callback_body: Mapped[str | None] = mapped_column(Text)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    gave_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


metadata = Base.metadata
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
# Every process of the service beats here (billing_runtime.heartbeats): the status endpoint's workers.
heartbeats = heartbeat_table(metadata)


class ProviderAccountRow(Base):
    """One merchant's credentials at one provider (API.md "Provider accounts"). The credentials are
    one ciphertext (``billing_runtime.key_ring``, PROVIDERS_CREDENTIALS_KEYS) of their JSON; which
    fields are set is kept beside it in the clear, for the answers that list them."""

    __tablename__ = "provider_accounts"
    __table_args__ = (
        CheckConstraint("provider IN ('payme', 'click', 'octo', 'stripe')", name="provider"),
        CheckConstraint("environment IN ('test', 'production')", name="environment"),
        Index("ix_provider_accounts_created", "created_at", "id"),
        Index("uq_provider_accounts_simulator", "provider", unique=True, postgresql_where=text("simulator")),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(128))
    environment: Mapped[str] = mapped_column(String(16))
    currencies: Mapped[list[str]] = mapped_column(JSONB)
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB)
    credentials_ciphertext: Mapped[str] = mapped_column(Text)
    credentials_set: Mapped[list[str]] = mapped_column(JSONB)
    # The account a provider's simulator plays against for test tenants without an account of their own
    # (API.md): created by the service, never shown by or changed through the admin API.
    simulator: Mapped[bool] = mapped_column(Boolean, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TenantProviderAccountRow(Base):
    """Which account a tenant's payments are paid through at each provider: one per provider. An
    assigned account cannot be deleted (the foreign key refuses it; the API answers 409 first)."""

    __tablename__ = "tenant_provider_accounts"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    provider: Mapped[str] = mapped_column(String(16), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(40), ForeignKey("provider_accounts.id"), index=True)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime())


# Provider-specific tables live in their own modules; imported here so that ``metadata`` (Alembic, the
# tests' truncation) knows every table.
from providers_svc.db import click as _click  # noqa: E402, F401
from providers_svc.db import click_simulator as _click_simulator  # noqa: E402, F401
from providers_svc.db import octo as _octo  # noqa: E402, F401
from providers_svc.db import payme as _payme  # noqa: E402, F401
from providers_svc.db import refunds as _refunds  # noqa: E402, F401
from providers_svc.db import stripe as _stripe  # noqa: E402, F401
from providers_svc.db import stripe_objects as _stripe_objects  # noqa: E402, F401
