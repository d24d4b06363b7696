"""Disputes reconciled: ``recon_disputes`` (each dispute of our payments as the provider reported it, with
the times its funds were withdrawn and given back) and ``statement_lines.payment_reference`` (a dispute
line's payment as the provider names it, to match a line whose dispute we do not know by its payment).

Revision ID: recon_disputes
Revises: worker_heartbeats
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "recon_disputes"
down_revision = "worker_heartbeats"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recon_disputes",
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("provider_dispute_id", sa.String(128), nullable=False),
        sa.Column("payment_id", sa.String(40), nullable=False),
        sa.Column("provider_transaction_id", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("provider_updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("provider", "provider_dispute_id", name=op.f("pk_recon_disputes")),
    )
    op.create_index("ix_recon_disputes_payment_id", "recon_disputes", ["payment_id"])
    op.add_column("statement_lines", sa.Column("payment_reference", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("statement_lines", "payment_reference")
    op.drop_index("ix_recon_disputes_payment_id", table_name="recon_disputes")
    op.drop_table("recon_disputes")
