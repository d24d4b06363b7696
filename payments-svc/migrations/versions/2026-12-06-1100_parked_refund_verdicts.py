"""parked_refund_verdicts: refund verdicts that came before their payment was captured

Revision ID: parked_refund_verdicts
Revises: events_position_index
Create Date: 2026-12-06 11:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "parked_refund_verdicts"
down_revision = "events_position_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "parked_refund_verdicts",
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("payment_id", sa.String(64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("provider_updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("parked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_parked_refund_verdicts")),
    )
    op.create_index("ix_parked_refund_verdicts_payment_id", "parked_refund_verdicts", ["payment_id"])


def downgrade() -> None:
    op.drop_index("ix_parked_refund_verdicts_payment_id", table_name="parked_refund_verdicts")
    op.drop_table("parked_refund_verdicts")
