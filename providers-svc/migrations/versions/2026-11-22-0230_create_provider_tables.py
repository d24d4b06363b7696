"""create provider tables

Revision ID: 45663e296d4b
Revises:
Create Date: 2026-11-22 02:30:59.795881
"""

import billing_runtime.db
import sqlalchemy as sa
from alembic import op

revision = "45663e296d4b"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=128), nullable=False),
        sa.Column("received_at", billing_runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "message_id", name=op.f("pk_inbox")),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("routing_key", sa.String(length=255), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", billing_runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", billing_runtime.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("claim_token", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_event_id")),
    )
    op.create_table(
        "provider_events",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=True),
        sa.Column("transaction_id", sa.String(length=32), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("result", sa.String(length=32), nullable=True),
        sa.Column("received_at", billing_runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_events")),
        sa.UniqueConstraint("provider", "external_id", name=op.f("uq_provider_events_provider")),
    )
    op.create_index(op.f("ix_provider_events_transaction_id"), "provider_events", ["transaction_id"], unique=False)
    op.create_table(
        "provider_transactions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("payment_id", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("return_url", sa.Text(), nullable=True),
        sa.Column("redirect_url", sa.Text(), nullable=True),
        sa.Column("provider_reference", sa.String(length=255), nullable=True),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("failure_message", sa.Text(), nullable=True),
        sa.Column("expires_at", billing_runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", billing_runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", billing_runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'succeeded', 'failed', 'cancelled')", name=op.f("ck_provider_transactions_status")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_provider_transactions_amount_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_transactions")),
        sa.UniqueConstraint("payment_id", "provider", name=op.f("uq_provider_transactions_payment_id")),
    )
    op.create_index(
        "ix_provider_transactions_tenant_payment", "provider_transactions", ["tenant_id", "payment_id"], unique=False
    )
    op.create_table(
        "sandbox_charges",
        sa.Column("transaction_id", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=True),
        sa.Column("callback_body", sa.Text(), nullable=True),
        sa.Column("due_at", billing_runtime.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("claim_token", sa.String(length=32), nullable=True),
        sa.Column("claimed_until", billing_runtime.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", billing_runtime.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("gave_up_at", billing_runtime.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", billing_runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('succeed', 'decline', 'pending', 'cancelled')", name=op.f("ck_sandbox_charges_outcome")
        ),
        sa.PrimaryKeyConstraint("transaction_id", name=op.f("pk_sandbox_charges")),
        sa.UniqueConstraint("event_id", name=op.f("uq_sandbox_charges_event_id")),
    )
    op.create_index(
        "ix_sandbox_charges_owed",
        "sandbox_charges",
        ["due_at"],
        unique=False,
        postgresql_where=sa.text("delivered_at IS NULL AND gave_up_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_sandbox_charges_owed",
        table_name="sandbox_charges",
        postgresql_where=sa.text("delivered_at IS NULL AND gave_up_at IS NULL"),
    )
    op.drop_table("sandbox_charges")
    op.drop_index("ix_provider_transactions_tenant_payment", table_name="provider_transactions")
    op.drop_table("provider_transactions")
    op.drop_index(op.f("ix_provider_events_transaction_id"), table_name="provider_events")
    op.drop_table("provider_events")
    op.drop_table("outbox")
    op.drop_table("inbox")
