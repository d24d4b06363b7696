"""outbox dead letters (embedded mode)

Revision ID: outbox_dead_letters
Revises: 45663e296d4b
Create Date: 2026-12-01 20:00:00

In the embedded mode the in-process bus runs the consumers inside the relay's publish: an event a
consumer dead-letters keeps its outbox row, marked (when, which queues, why), for the dead-letters CLI
to list and replay; the relay claims only unmarked rows. Nullable columns: nothing to backfill.
"""

import billing_runtime.db
import sqlalchemy as sa
from alembic import op

revision = "outbox_dead_letters"
down_revision = "45663e296d4b"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("dead_at", billing_runtime.db.UTCDateTime(timezone=True), nullable=True))
    op.add_column("outbox", sa.Column("dead_queues", sa.Text(), nullable=True))
    op.add_column("outbox", sa.Column("dead_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("dead_reason")
        batch.drop_column("dead_queues")
        batch.drop_column("dead_at")
