"""statement refunds: the indexes a statement's refund lines are read by

Revision ID: statement_refunds
Revises: manual_capture
Create Date: 2026-12-14 10:00:00

A statement pages through an account's answered refunds by (updated_at, id) and through Payme's
reversals by (cancel_time, Payme id); without these each page would scan the whole table.
"""

from alembic import op

revision = "statement_refunds"
down_revision = "manual_capture"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_provider_refunds_statement", "provider_refunds", ["account_id", "updated_at", "id"])
    op.create_index("ix_payme_reversals_statement", "payme_reversals", ["account_id", "cancel_time", "payme_id"])


def downgrade() -> None:
    op.drop_index("ix_payme_reversals_statement", table_name="payme_reversals")
    op.drop_index("ix_provider_refunds_statement", table_name="provider_refunds")
