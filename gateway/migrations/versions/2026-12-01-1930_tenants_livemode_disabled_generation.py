"""tenants: livemode, disabled, secret_generation

Revision ID: 7c1e0a4d9b21
Revises: 32f86afc8156
Create Date: 2026-12-01 19:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "7c1e0a4d9b21"
down_revision = "32f86afc8156"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing tenants become test tenants, enabled, on their first secret generation (their current
    # access tokens carry no generation and are refused: they re-authenticate once).
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("livemode", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column("disabled", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column("secret_generation", sa.Integer(), server_default=sa.text("1"), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("secret_generation")
        batch.drop_column("disabled")
        batch.drop_column("livemode")
