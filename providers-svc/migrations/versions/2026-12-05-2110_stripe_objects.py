"""providers: the Stripe projections (charges, refunds, disputes, customers, subscriptions, invoices,
products of every Stripe provider account), one row per (account, object, Stripe id)

Revision ID: stripe_objects
Revises: stripe_intents
Create Date: 2026-12-05 21:10:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "stripe_objects"
down_revision = "stripe_intents"
branch_labels = None
depends_on = None


def upgrade() -> None:
    jsonb = postgresql.JSONB(astext_type=sa.Text())
    op.create_table(
        "stripe_objects",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("object", sa.String(length=16), nullable=False),
        sa.Column("stripe_id", sa.String(length=255), nullable=False),
        sa.Column("stripe_account", sa.String(length=255), nullable=True),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("customer", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=64), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("object_metadata", jsonb, nullable=False),
        sa.Column("subscription", sa.String(length=255), nullable=True),
        sa.Column("invoice", sa.String(length=255), nullable=True),
        sa.Column("subscription_metadata", jsonb, nullable=True),
        sa.Column("own_subscription_metadata", jsonb, nullable=True),
        sa.Column("data", jsonb, nullable=False),
        sa.Column("version_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version_rank", sa.SmallInteger(), nullable=False),
        sa.Column("version_progress", sa.BigInteger(), nullable=False),
        # "C": the event id breaks ties the same way whatever the server's locale.
        sa.Column("event_id", sa.String(length=255, collation="C"), nullable=False),
        sa.Column("event_type", sa.String(length=128), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "object", "stripe_id", name=op.f("pk_stripe_objects")),
    )
    op.create_index(
        "ix_stripe_objects_tenant_list", "stripe_objects", ["tenant_id", "object", "livemode", "created", "stripe_id"]
    )
    op.create_index("ix_stripe_objects_list", "stripe_objects", ["object", "created", "stripe_id"])
    op.create_index(
        "ix_stripe_objects_invoice",
        "stripe_objects",
        ["account_id", "invoice"],
        postgresql_where=sa.text("object = 'charge'"),
    )
    op.create_index(
        "ix_stripe_objects_subscription",
        "stripe_objects",
        ["account_id", "subscription"],
        postgresql_where=sa.text("object = 'invoice'"),
    )


def downgrade() -> None:
    op.drop_index("ix_stripe_objects_subscription", table_name="stripe_objects")
    op.drop_index("ix_stripe_objects_invoice", table_name="stripe_objects")
    op.drop_index("ix_stripe_objects_list", table_name="stripe_objects")
    op.drop_index("ix_stripe_objects_tenant_list", table_name="stripe_objects")
    op.drop_table("stripe_objects")
