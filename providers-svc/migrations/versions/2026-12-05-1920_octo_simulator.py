"""providers: the Octo simulator's payments (the fake Octo server, shared by every api process)

Revision ID: octo_simulator
Revises: click_reservations
Create Date: 2026-12-05 19:00:00
"""

import billing_runtime.db
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "octo_simulator"
down_revision = "click_reservations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "octo_simulator_payments",
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("shop_id", sa.BigInteger(), nullable=False),
        sa.Column("shop_transaction_id", sa.String(length=64), nullable=False),
        sa.Column("total_sum", sa.Numeric(20, 2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("auto_capture", sa.Boolean(), nullable=False),
        sa.Column("test", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column(
            "refunds", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
        sa.Column("return_url", sa.Text(), nullable=True),
        sa.Column("notify_url", sa.Text(), nullable=True),
        sa.Column("created_at", billing_runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", billing_runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_octo_simulator_payments")),
        sa.UniqueConstraint(
            "shop_id", "shop_transaction_id", name=op.f("uq_octo_simulator_payments_shop_id_shop_transaction_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("octo_simulator_payments")
