"""events: an index on position alone, for every tenant's log in one order (GET /internal/events)

Revision ID: events_position_index
Revises: disputes
Create Date: 2026-12-06 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "events_position_index"
down_revision = "refunds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_events_position",
        "events",
        ["position"],
        unique=False,
        postgresql_where=sa.text("position IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_events_position", table_name="events")
