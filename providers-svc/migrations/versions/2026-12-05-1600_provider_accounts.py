"""providers: provider accounts (credentials encrypted) and their assignment to tenants

Revision ID: provider_accounts
Revises: outbox_dead_letters
Create Date: 2026-12-05 16:00:00
"""

import billing_runtime.db
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "provider_accounts"
down_revision = "outbox_dead_letters"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "provider_accounts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("currencies", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("settings", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("credentials_ciphertext", sa.Text(), nullable=False),
        sa.Column("credentials_set", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", billing_runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", billing_runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("environment IN ('test', 'production')", name=op.f("ck_provider_accounts_environment")),
        sa.CheckConstraint(
            "provider IN ('payme', 'click', 'octo', 'stripe')", name=op.f("ck_provider_accounts_provider")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_accounts")),
    )
    op.create_index("ix_provider_accounts_created", "provider_accounts", ["created_at", "id"], unique=False)
    op.create_table(
        "tenant_provider_accounts",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("assigned_at", billing_runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["provider_accounts.id"],
            name=op.f("fk_tenant_provider_accounts_account_id_provider_accounts"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "provider", name=op.f("pk_tenant_provider_accounts")),
    )
    op.create_index(
        op.f("ix_tenant_provider_accounts_account_id"), "tenant_provider_accounts", ["account_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_tenant_provider_accounts_account_id"), table_name="tenant_provider_accounts")
    op.drop_table("tenant_provider_accounts")
    op.drop_index("ix_provider_accounts_created", table_name="provider_accounts")
    op.drop_table("provider_accounts")
