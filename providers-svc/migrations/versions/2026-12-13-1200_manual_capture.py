"""manual capture: provider transactions that only authorize, and the sandbox bank's holds

Revision ID: manual_capture
Revises: worker_heartbeats
Create Date: 2026-12-13 01:00:00

``provider_transactions``: ``capture_method`` (existing rows: automatic), when the provider reported
the funds held (``authorized_at``) and until when (``authorization_expires_at``), and what a capture
took (``captured_amount``; existing succeeded rows took their amount). ``sandbox_charges``: the bank
holds (``authorized``) and captures (``captured``, with ``captured_amount``).
"""

import billing_runtime.db
import sqlalchemy as sa
from alembic import op

revision = "manual_capture"
down_revision = "worker_heartbeats"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("provider_transactions") as batch:
        batch.add_column(sa.Column("capture_method", sa.String(length=16), server_default="automatic", nullable=False))
        batch.add_column(sa.Column("authorized_at", billing_runtime.db.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("authorization_expires_at", billing_runtime.db.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("captured_amount", sa.BigInteger(), nullable=True))
        batch.create_check_constraint(
            op.f("ck_provider_transactions_capture_method"), "capture_method IN ('automatic', 'manual')"
        )
    op.execute("UPDATE provider_transactions SET captured_amount = amount WHERE status = 'succeeded'")
    with op.batch_alter_table("sandbox_charges") as batch:
        batch.add_column(sa.Column("captured_amount", sa.BigInteger(), nullable=True))
        batch.drop_constraint(op.f("ck_sandbox_charges_outcome"), type_="check")
        batch.create_check_constraint(
            op.f("ck_sandbox_charges_outcome"),
            "outcome IN ('succeed', 'decline', 'pending', 'cancelled', 'authorized', 'captured')",
        )


def downgrade() -> None:
    with op.batch_alter_table("sandbox_charges") as batch:
        batch.drop_constraint(op.f("ck_sandbox_charges_outcome"), type_="check")
        batch.create_check_constraint(
            op.f("ck_sandbox_charges_outcome"), "outcome IN ('succeed', 'decline', 'pending', 'cancelled')"
        )
        batch.drop_column("captured_amount")
    with op.batch_alter_table("provider_transactions") as batch:
        batch.drop_constraint(op.f("ck_provider_transactions_capture_method"), type_="check")
        batch.drop_column("captured_amount")
        batch.drop_column("authorization_expires_at")
        batch.drop_column("authorized_at")
        batch.drop_column("capture_method")
