"""worker heartbeats

Revision ID: worker_heartbeats
Revises: outbox_traceparent
Create Date: 2026-12-13 10:00:00

One row per live process of the service, refreshed every few seconds (billing_runtime.heartbeats): the
status endpoint lists the processes seen recently, counts the stale ones, and reads each one's loops'
last passes and oldest dead letters from ``details``.
"""

import sqlalchemy as sa
from alembic import op
from billing_runtime.db import UTCDateTime
from sqlalchemy.dialects import postgresql

revision = "worker_heartbeats"
down_revision = "outbox_traceparent"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worker_heartbeats",
        sa.Column("worker_id", sa.String(200), nullable=False),
        sa.Column("role", sa.String(64), nullable=False),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("details", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.PrimaryKeyConstraint("worker_id", name=op.f("pk_worker_heartbeats")),
    )


def downgrade() -> None:
    op.drop_table("worker_heartbeats")
