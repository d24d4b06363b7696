"""events: an index of each payment's events in log order (GET /v1/events?payment_id=)

Revision ID: events_payment_index
Revises: manual_capture
Create Date: 2026-12-13 13:00:00

Every payment, refund and dispute event carries the payment as ``data.payment``, so the index is on
that expression and no column is added (the insert path is unchanged; old rows are covered at once).
"""

import sqlalchemy as sa
from alembic import op

revision = "events_payment_index"
down_revision = "manual_capture"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_events_tenant_payment",
        "events",
        ["tenant_id", sa.text("(data -> 'payment' ->> 'id')"), "position"],
        unique=False,
        postgresql_where=sa.text("position IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_events_tenant_payment", table_name="events")
