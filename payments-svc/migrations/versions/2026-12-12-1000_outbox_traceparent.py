"""outbox traceparent

Revision ID: outbox_traceparent
Revises: parked_refund_verdicts
Create Date: 2026-12-12 10:00:00

The W3C traceparent of the transaction that wrote an event (billing_runtime.tracing): the relay
publishes it as the message's header, so a consumer continues the trace of what caused the event.
Nullable: rows written before it are published without one (their consumers start a new trace).
"""

import sqlalchemy as sa
from alembic import op

revision = "outbox_traceparent"
down_revision = "parked_refund_verdicts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("traceparent", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("outbox", "traceparent")
