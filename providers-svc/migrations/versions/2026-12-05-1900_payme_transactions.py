"""providers: Payme's transactions (PROTOCOLS.md §2) and the reversals of performed ones

Revision ID: payme_transactions
Revises: provider_account_binding
Create Date: 2026-12-05 19:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "payme_transactions"
down_revision = "provider_account_binding"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payme_transactions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("payme_id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("provider_transaction_id", sa.String(length=32), nullable=False),
        sa.Column("payment_id", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("create_time", sa.BigInteger(), nullable=False),
        sa.Column("perform_time", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cancel_time", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("state", sa.SmallInteger(), nullable=False),
        sa.Column("reason", sa.SmallInteger(), nullable=True),
        sa.Column("fiscal_perform", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("fiscal_cancel", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.CheckConstraint("state IN (1, 2, -1, -2)", name=op.f("ck_payme_transactions_state")),
        sa.CheckConstraint("amount > 0", name=op.f("ck_payme_transactions_amount_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payme_transactions")),
        sa.UniqueConstraint("payme_id", name=op.f("uq_payme_transactions_payme_id")),
    )
    # One active (created or performed) Payme transaction per order, whoever races to create it.
    op.create_index(
        "uq_payme_transactions_active",
        "payme_transactions",
        ["payment_id"],
        unique=True,
        postgresql_where=sa.text("state IN (1, 2)"),
    )
    op.create_index("ix_payme_transactions_payment", "payme_transactions", ["payment_id"])
    op.create_index("ix_payme_transactions_account_time", "payme_transactions", ["account_id", "time"])
    op.create_table(
        "payme_reversals",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("payme_transaction_id", sa.String(length=32), nullable=False),
        sa.Column("payme_id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("provider_transaction_id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("payment_id", sa.String(length=64), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reason", sa.SmallInteger(), nullable=False),
        sa.Column("cancel_time", sa.BigInteger(), nullable=False),
        sa.Column("refund_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payme_reversals")),
        sa.UniqueConstraint("payme_transaction_id", name=op.f("uq_payme_reversals_payme_transaction_id")),
    )
    op.create_index("ix_payme_reversals_payment", "payme_reversals", ["payment_id"])


def downgrade() -> None:
    op.drop_index("ix_payme_reversals_payment", table_name="payme_reversals")
    op.drop_table("payme_reversals")
    op.drop_index("ix_payme_transactions_account_time", table_name="payme_transactions")
    op.drop_index("ix_payme_transactions_payment", table_name="payme_transactions")
    op.drop_index("uq_payme_transactions_active", table_name="payme_transactions")
    op.drop_table("payme_transactions")
