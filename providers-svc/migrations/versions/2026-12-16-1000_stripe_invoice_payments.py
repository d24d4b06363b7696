"""stripe invoice payments: which payments paid which invoice, in API versions from 2025-03-31

Revision ID: stripe_invoice_payments
Revises: stripe_deliveries
Create Date: 2026-12-16 10:00:00

From Stripe API version 2025-03-31 a charge no longer names its invoice: an ``invoice_payment`` links
the invoice to a PaymentIntent (or a charge). ``stripe_invoice_payments`` keeps those links (never
updated nor deleted), and ``stripe_objects.payment_intent`` a charge's PaymentIntent, so that the
projection can give a charge its invoice, and so its subscription's metadata, in either arrival order.
Existing charges keep NULL until their next event (their ``invoice``, where they had one, is kept).
"""

import sqlalchemy as sa
from alembic import op

revision = "stripe_invoice_payments"
down_revision = "stripe_deliveries"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("stripe_objects", sa.Column("payment_intent", sa.String(255), nullable=True))
    op.create_index(
        "ix_stripe_objects_payment_intent",
        "stripe_objects",
        ["account_id", "payment_intent"],
        postgresql_where=sa.text("object = 'charge'"),
    )
    op.create_table(
        "stripe_invoice_payments",
        sa.Column("account_id", sa.String(40), nullable=False),
        sa.Column("payment", sa.String(255), nullable=False),
        sa.Column("invoice", sa.String(255), nullable=False),
        sa.Column("invoice_payment", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "payment", "invoice", name=op.f("pk_stripe_invoice_payments")),
    )


def downgrade() -> None:
    op.drop_table("stripe_invoice_payments")
    op.drop_index("ix_stripe_objects_payment_intent", table_name="stripe_objects")
    op.drop_column("stripe_objects", "payment_intent")
