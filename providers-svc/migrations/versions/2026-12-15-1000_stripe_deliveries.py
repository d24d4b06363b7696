"""stripe deliveries: each accepted delivery of a Stripe event on its inbox row

Revision ID: stripe_deliveries
Revises: statement_refunds
Create Date: 2026-12-15 10:00:00

``provider_events.deliveries``: the ``"<t>:<account id>"`` of each delivery of a Stripe event accepted so
far (the signature's timestamp, and the account whose webhook secret verified it). Stripe signs every
attempt afresh, so a request repeating one of them is a replay and is refused. Existing rows and other
providers' rows keep NULL (a row without deliveries has none to repeat).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "stripe_deliveries"
down_revision = "statement_refunds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("provider_events", sa.Column("deliveries", postgresql.ARRAY(sa.Text()), nullable=True))


def downgrade() -> None:
    op.drop_column("provider_events", "deliveries")
