"""tenants: allowed_origins

Revision ID: 4b8f2d6e1a93
Revises: 7c1e0a4d9b21
Create Date: 2026-12-06 02:30:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "4b8f2d6e1a93"
down_revision = "7c1e0a4d9b21"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing tenants get none: their checkout can no longer be framed until the operator lists their
    # sites (it was frameable by any site, CHECKOUT_FRAME_ANCESTORS=*, before).
    op.add_column(
        "tenants",
        sa.Column(
            "allowed_origins",
            postgresql.ARRAY(sa.String(length=255)),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
    )


def downgrade() -> None:
    op.drop_column("tenants", "allowed_origins")
