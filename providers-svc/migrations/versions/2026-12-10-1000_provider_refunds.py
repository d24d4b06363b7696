"""providers: provider_refunds, one row per refund we asked a provider for (unique on our refund id),
and click_simulator_reversals, the Click simulator's reversals

Revision ID: provider_refunds
Revises: stripe_objects
Create Date: 2026-12-10 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "provider_refunds"
down_revision = "stripe_objects"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "provider_refunds",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("payment_id", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("provider_transaction_id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("published_status", sa.String(length=16), nullable=True),
        sa.Column("provider_refund_id", sa.String(length=255), nullable=True),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("failure_message", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("claim_token", sa.String(length=32), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("provider_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('requested', 'pending', 'succeeded', 'failed')", name=op.f("ck_provider_refunds_status")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_provider_refunds_amount_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_refunds")),
    )
    op.create_index("ix_provider_refunds_transaction", "provider_refunds", ["provider_transaction_id"])
    op.create_index(
        "ix_provider_refunds_due",
        "provider_refunds",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'requested'"),
    )
    op.create_table(
        "click_simulator_reversals",
        sa.Column("click_paydoc_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("click_paydoc_id", name=op.f("pk_click_simulator_reversals")),
    )


def downgrade() -> None:
    op.drop_table("click_simulator_reversals")
    op.drop_index("ix_provider_refunds_due", table_name="provider_refunds")
    op.drop_index("ix_provider_refunds_transaction", table_name="provider_refunds")
    op.drop_table("provider_refunds")
