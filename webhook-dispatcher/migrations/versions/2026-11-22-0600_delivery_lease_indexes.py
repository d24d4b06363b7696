"""delivery lease indexes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 06:00:00

The batched claim reads each endpoint's oldest due deliveries (endpoint, status, next_attempt_at) and
the live leases of other workers (a partial index: only leased rows, a handful at any time). The old
(endpoint, status, claimed_until) index served the per-endpoint in-flight count, no longer made.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_webhook_deliveries_endpoint_due",
        "webhook_deliveries",
        ["endpoint_id", "status", "next_attempt_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_webhook_deliveries_leased",
        "webhook_deliveries",
        ["endpoint_id"],
        unique=False,
        postgresql_where=sa.text("claim_token IS NOT NULL"),
    )
    op.drop_index("ix_webhook_deliveries_endpoint_status", table_name="webhook_deliveries")


def downgrade() -> None:
    op.create_index(
        "ix_webhook_deliveries_endpoint_status",
        "webhook_deliveries",
        ["endpoint_id", "status", "claimed_until"],
        unique=False,
    )
    op.drop_index("ix_webhook_deliveries_leased", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_endpoint_due", table_name="webhook_deliveries")
