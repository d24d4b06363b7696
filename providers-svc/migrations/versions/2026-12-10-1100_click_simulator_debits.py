"""providers: the Click simulator's debits whose Complete was lost (reconciliation's sync heals them)

Revision ID: click_simulator_debits
Revises: stripe_objects
Create Date: 2026-12-06 10:00:00
"""

import billing_runtime.db
import sqlalchemy as sa
from alembic import op

revision = "click_simulator_debits"
down_revision = "provider_refunds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "click_simulator_debits",
        sa.Column("click_trans_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", billing_runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("click_trans_id", name=op.f("pk_click_simulator_debits")),
    )


def downgrade() -> None:
    op.drop_table("click_simulator_debits")
