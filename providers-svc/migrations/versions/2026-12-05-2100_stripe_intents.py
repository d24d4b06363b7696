"""providers: stripe_intents (what the Stripe webhooks last applied per transaction)

Revision ID: stripe_intents
Revises: provider_accounts_notify
Create Date: 2026-12-05 21:00:00
"""

import sqlalchemy as sa
from alembic import op
from billing_runtime.db import UTCDateTime

revision = "stripe_intents"
down_revision = "provider_accounts_notify"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stripe_intents",
        sa.Column("transaction_id", sa.String(length=32), nullable=False),
        sa.Column("payment_intent_id", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("status_at", UTCDateTime(), nullable=False),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("failure_message", sa.Text(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("transaction_id", name=op.f("pk_stripe_intents")),
    )
    op.create_index(op.f("ix_stripe_intents_payment_intent_id"), "stripe_intents", ["payment_intent_id"])
    op.create_index(
        "ix_provider_transactions_stripe_reference",
        "provider_transactions",
        ["provider_reference"],
        postgresql_where=sa.text("provider = 'stripe'"),
    )


def downgrade() -> None:
    op.drop_index("ix_provider_transactions_stripe_reference", table_name="provider_transactions")
    op.drop_index(op.f("ix_stripe_intents_payment_intent_id"), table_name="stripe_intents")
    op.drop_table("stripe_intents")
