"""webhooks: livemode on endpoints, events and deliveries; manual retry of a pending delivery

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 01:00:00

``livemode``: the tenant's mode (API.md), from the internal token for endpoints and from the event's
envelope for events and deliveries; rows written before it existed were test tenants'.
``resume_at``/``manual_attempts``/``retry_requested``: a manual retry of a pending delivery is one
attempt now, after which the automatic schedule resumes where it was (API.md).
"""

import billing_runtime.db
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("webhook_endpoints", "webhook_events", "webhook_deliveries"):
        op.add_column(table, sa.Column("livemode", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column(
        "webhook_deliveries", sa.Column("resume_at", billing_runtime.db.UTCDateTime(timezone=True), nullable=True)
    )
    op.add_column("webhook_deliveries", sa.Column("manual_attempts", sa.Integer(), server_default="0", nullable=False))
    op.add_column(
        "webhook_deliveries", sa.Column("retry_requested", sa.Boolean(), server_default=sa.false(), nullable=False)
    )


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_column("retry_requested")
        batch.drop_column("manual_attempts")
        batch.drop_column("resume_at")
    for table in ("webhook_deliveries", "webhook_events", "webhook_endpoints"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("livemode")
