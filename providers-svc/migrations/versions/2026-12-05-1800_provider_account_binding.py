"""providers: each transaction remembers the provider account it was started with; simulator accounts

Revision ID: provider_account_binding
Revises: provider_accounts
Create Date: 2026-12-05 18:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "provider_account_binding"
down_revision = "provider_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Null for the sandbox, which has no accounts. No foreign key: an account may be deleted once
    # unassigned, and its old transactions keep the id they were paid through.
    op.add_column("provider_transactions", sa.Column("account_id", sa.String(length=40), nullable=True))
    op.add_column("provider_accounts", sa.Column("simulator", sa.Boolean(), server_default=sa.false(), nullable=False))
    # One simulator account per provider, created by the service itself at start.
    op.create_index(
        "uq_provider_accounts_simulator",
        "provider_accounts",
        ["provider"],
        unique=True,
        postgresql_where=sa.text("simulator"),
    )


def downgrade() -> None:
    op.drop_index("uq_provider_accounts_simulator", table_name="provider_accounts")
    op.drop_column("provider_accounts", "simulator")
    op.drop_column("provider_transactions", "account_id")
