"""disputes: the disputes table; payments.amount_disputed and payments.dispute

Revision ID: disputes
Revises: outbox_dead_letters
Create Date: 2026-12-05 21:00:00

Existing payments have no dispute: amount_disputed 0 (a server default) and dispute NULL, nothing to
backfill.
"""

import billing_runtime.db
import sqlalchemy as sa
from alembic import op

revision = "disputes"
down_revision = "outbox_dead_letters"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("amount_disputed", sa.BigInteger(), server_default="0", nullable=False))
        batch.add_column(sa.Column("dispute", sa.JSON(), nullable=True))
        batch.create_check_constraint(
            op.f("ck_payments_amount_disputed_bounds"), "amount_disputed >= 0 AND amount_disputed <= amount"
        )
    op.create_table(
        "disputes",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("payment_id", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("provider_dispute_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("funds_withdrawn", sa.Boolean(), nullable=False),
        sa.Column("evidence_due_by", billing_runtime.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("provider_created_at", billing_runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("provider_updated_at", billing_runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", billing_runtime.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", billing_runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", billing_runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_disputes_amount_positive")),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"], name=op.f("fk_disputes_payment_id_payments")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_disputes")),
        sa.UniqueConstraint("provider", "provider_dispute_id", name="uq_disputes_provider_dispute"),
    )
    op.create_index(op.f("ix_disputes_payment_id"), "disputes", ["payment_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_disputes_payment_id"), table_name="disputes")
    op.drop_table("disputes")
    with op.batch_alter_table("payments") as batch:
        batch.drop_constraint(op.f("ck_payments_amount_disputed_bounds"), type_="check")
        batch.drop_column("dispute")
        batch.drop_column("amount_disputed")
