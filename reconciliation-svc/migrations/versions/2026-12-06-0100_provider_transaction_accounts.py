"""The provider account of each provider verdict (``recon_provider_transactions.account_id``), which files
our payments under their account for the scheduled runs and ``missing_at_provider``.

Revision ID: provider_transaction_accounts
Revises: runs_statements
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "provider_transaction_accounts"
down_revision = "runs_statements"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("recon_provider_transactions", sa.Column("account_id", sa.String(40), nullable=True))


def downgrade() -> None:
    op.drop_column("recon_provider_transactions", "account_id")
