"""refunds: the refunds table; payments.refund_reserved and its bound

Revision ID: refunds
Revises: disputes
Create Date: 2026-12-06 09:00:00

Existing payments have no refund row: what they hold for refunds is what they refunded (none had a
pending refund), so ``refund_reserved`` starts at ``amount_refunded``.
"""

import billing_runtime.db
import sqlalchemy as sa
from alembic import op

revision = "refunds"
down_revision = "disputes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("refund_reserved", sa.BigInteger(), server_default="0", nullable=False))
    op.execute("UPDATE payments SET refund_reserved = amount_refunded WHERE amount_refunded <> 0")
    with op.batch_alter_table("payments") as batch:
        batch.create_check_constraint(
            op.f("ck_payments_refund_reserved_bounds"),
            "amount_refunded <= refund_reserved AND refund_reserved <= amount",
        )
    op.create_table(
        "refunds",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("payment_id", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("provider_refund_id", sa.String(length=128), nullable=True),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("failure_message", sa.Text(), nullable=True),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("provider_updated_at", billing_runtime.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", billing_runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", billing_runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_refunds_amount_positive")),
        sa.CheckConstraint("status IN ('PENDING', 'SUCCEEDED', 'FAILED')", name=op.f("ck_refunds_status")),
        sa.CheckConstraint("origin IN ('tenant', 'provider')", name=op.f("ck_refunds_origin")),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"], name=op.f("fk_refunds_payment_id_payments")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
        sa.UniqueConstraint("payment_id", "provider_refund_id", name="uq_refunds_payment_provider_refund"),
    )
    op.create_index("ix_refunds_payment_created", "refunds", ["payment_id", "created_at", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_refunds_payment_created", table_name="refunds")
    op.drop_table("refunds")
    with op.batch_alter_table("payments") as batch:
        batch.drop_constraint(op.f("ck_payments_refund_reserved_bounds"), type_="check")
        batch.drop_column("refund_reserved")
