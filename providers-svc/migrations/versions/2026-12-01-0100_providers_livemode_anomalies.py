"""providers: livemode on every provider transaction; the anomalies table

Revision ID: 7c1e5a0f2b93
Revises: 45663e296d4b
Create Date: 2026-12-01 01:00:00
"""

import billing_runtime.db
import sqlalchemy as sa
from alembic import op

revision = "7c1e5a0f2b93"
down_revision = "45663e296d4b"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows written before the mode existed were all test tenants' (the sandbox was the only provider).
    op.add_column(
        "provider_transactions",
        sa.Column("livemode", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.create_table(
        "anomalies",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=48), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("provider_event_id", sa.String(length=32), nullable=False),
        sa.Column("transaction_id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("payment_id", sa.String(length=64), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("expected_amount", sa.BigInteger(), nullable=False),
        sa.Column("expected_currency", sa.String(length=3), nullable=False),
        sa.Column("transaction_status", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", billing_runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anomalies")),
        sa.UniqueConstraint("provider_event_id", name=op.f("uq_anomalies_provider_event_id")),
    )
    op.create_index(op.f("ix_anomalies_transaction_id"), "anomalies", ["transaction_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_anomalies_transaction_id"), table_name="anomalies")
    op.drop_table("anomalies")
    op.drop_column("provider_transactions", "livemode")
