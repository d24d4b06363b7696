"""payment attempts: the payment_attempts table and payments.attempt_count

Revision ID: payment_attempts
Revises: outbox_traceparent
Create Date: 2026-12-13 10:00:00

Every payment started before attempts existed gets the attempt it had: one row for each payment with a
provider transaction, in the status its payment's says (pending while PROVIDER_PENDING, succeeded once
paid, failed for FAILED, cancelled otherwise), so ``attempt_count`` and the list tell its story.
"""

import billing_runtime.db
import sqlalchemy as sa
from alembic import op

revision = "payment_attempts"
down_revision = "outbox_traceparent"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("attempt_count", sa.Integer(), server_default="0", nullable=False))
    op.create_table(
        "payment_attempts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("payment_id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("provider_transaction_id", sa.String(length=64), nullable=False),
        sa.Column("provider_reference", sa.String(length=128), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("failure_message", sa.Text(), nullable=True),
        sa.Column("created_at", billing_runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", billing_runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'succeeded', 'failed', 'cancelled', 'abandoned')",
            name=op.f("ck_payment_attempts_status"),
        ),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"], name=op.f("fk_payment_attempts_payment_id_payments")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_attempts")),
        sa.UniqueConstraint("payment_id", "provider_transaction_id", name="uq_payment_attempts_transaction"),
    )
    op.create_index(
        "ix_payment_attempts_payment_created", "payment_attempts", ["payment_id", "created_at", "id"], unique=False
    )
    op.create_index(
        "uq_payment_attempts_one_pending",
        "payment_attempts",
        ["payment_id"],
        unique=True,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.execute(
        """
        INSERT INTO payment_attempts (id, payment_id, tenant_id, provider, provider_transaction_id,
                                      provider_reference, status, failure_code, failure_message,
                                      created_at, updated_at)
        SELECT 'att_' || substr(md5(id), 1, 26), id, tenant_id, provider, provider_transaction_id,
               provider_reference,
               CASE WHEN status = 'PROVIDER_PENDING' THEN 'pending'
                    WHEN status IN ('SUCCEEDED', 'PARTIALLY_REFUNDED', 'REFUNDED') THEN 'succeeded'
                    WHEN status = 'FAILED' THEN 'failed'
                    ELSE 'cancelled' END,
               failure_code, failure_message, updated_at, updated_at
        FROM payments
        WHERE provider_transaction_id IS NOT NULL AND provider IS NOT NULL
        """
    )
    op.execute(
        "UPDATE payments SET attempt_count = 1 WHERE provider_transaction_id IS NOT NULL AND provider IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_index("uq_payment_attempts_one_pending", table_name="payment_attempts")
    op.drop_index("ix_payment_attempts_payment_created", table_name="payment_attempts")
    op.drop_table("payment_attempts")
    with op.batch_alter_table("payments") as batch:
        batch.drop_column("attempt_count")
