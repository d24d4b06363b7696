"""providers: Click's reservations (Prepare/Complete of the SHOP API)

Revision ID: click_reservations
Revises: payme_transactions
Create Date: 2026-12-05 19:00:00
"""

import sqlalchemy as sa
from alembic import op
from billing_runtime.db import UTCDateTime

revision = "click_reservations"
down_revision = "payme_transactions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "click_reservations",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("click_trans_id", sa.BigInteger(), nullable=False),
        sa.Column("click_paydoc_id", sa.BigInteger(), nullable=False),
        sa.Column("merchant_trans_id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("provider_transaction_id", sa.String(length=32), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("state IN ('prepared', 'confirmed', 'cancelled')", name=op.f("ck_click_reservations_state")),
        sa.CheckConstraint("amount > 0", name=op.f("ck_click_reservations_amount_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_click_reservations")),
        sa.UniqueConstraint("click_trans_id", name=op.f("uq_click_reservations_click_trans_id")),
    )
    op.create_index(
        op.f("ix_click_reservations_provider_transaction_id"), "click_reservations", ["provider_transaction_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_click_reservations_provider_transaction_id"), table_name="click_reservations")
    op.drop_table("click_reservations")
