"""webhooks: drop ix_webhook_attempts_delivery_id, which uq_webhook_attempts_delivery_number covers

Revision ID: attempts_redundant_index
Revises: endpoints_notify
Create Date: 2026-12-15 10:00:00

The unique (delivery_id, number) index leads with delivery_id: it serves every lookup of a delivery's
attempts (in order) and the foreign key's checks, so the single-column index only cost every attempt's
insert one more index entry.
"""

from alembic import op

revision = "attempts_redundant_index"
down_revision = "endpoints_notify"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_webhook_attempts_delivery_id", table_name="webhook_attempts")


def downgrade() -> None:
    op.create_index("ix_webhook_attempts_delivery_id", "webhook_attempts", ["delivery_id"], unique=False)
