"""manual capture: capture_method, amount_capturable, amount_captured, authorization_expires_at

Revision ID: manual_capture
Revises: worker_heartbeats
Create Date: 2026-12-13 01:00:00

Two-stage payments (the AUTHORIZED status). Existing payments were all captured automatically: what a
paid one (SUCCEEDED, PARTIALLY_REFUNDED, REFUNDED) captured is its amount, and the refund bound moves
from ``amount`` to ``amount_captured`` (what the provider took is all that can go back).
"""

import billing_runtime.db
import sqlalchemy as sa
from alembic import op

revision = "manual_capture"
down_revision = "worker_heartbeats"
branch_labels = None
depends_on = None

_STATUSES = (
    "CREATED",
    "PROVIDER_PENDING",
    "AUTHORIZED",
    "SUCCEEDED",
    "FAILED",
    "EXPIRED",
    "CANCELLED",
    "PARTIALLY_REFUNDED",
    "REFUNDED",
)
_OLD_STATUSES = tuple(s for s in _STATUSES if s != "AUTHORIZED")


def _in(statuses: tuple[str, ...]) -> str:
    return f"status IN ({', '.join(repr(s) for s in statuses)})"


def upgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("capture_method", sa.String(length=16), server_default="automatic", nullable=False))
        batch.add_column(sa.Column("amount_capturable", sa.BigInteger(), server_default="0", nullable=False))
        batch.add_column(sa.Column("amount_captured", sa.BigInteger(), server_default="0", nullable=False))
        batch.add_column(sa.Column("authorization_expires_at", billing_runtime.db.UTCDateTime(), nullable=True))
    op.execute(
        "UPDATE payments SET amount_captured = amount WHERE status IN ('SUCCEEDED', 'PARTIALLY_REFUNDED', 'REFUNDED')"
    )
    with op.batch_alter_table("payments") as batch:
        batch.drop_constraint(op.f("ck_payments_status"), type_="check")
        batch.create_check_constraint(op.f("ck_payments_status"), _in(_STATUSES))
        batch.drop_constraint(op.f("ck_payments_refund_reserved_bounds"), type_="check")
        batch.create_check_constraint(
            op.f("ck_payments_refund_reserved_bounds"),
            "amount_refunded <= refund_reserved AND refund_reserved <= amount_captured",
        )
        batch.create_check_constraint(op.f("ck_payments_capture_method"), "capture_method IN ('automatic', 'manual')")
        batch.create_check_constraint(
            op.f("ck_payments_amount_captured_bounds"),
            "amount_captured >= 0 AND amount_captured <= amount AND amount_capturable >= 0"
            " AND amount_capturable <= amount",
        )


def downgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.drop_constraint(op.f("ck_payments_amount_captured_bounds"), type_="check")
        batch.drop_constraint(op.f("ck_payments_capture_method"), type_="check")
        batch.drop_constraint(op.f("ck_payments_refund_reserved_bounds"), type_="check")
        batch.create_check_constraint(
            op.f("ck_payments_refund_reserved_bounds"),
            "amount_refunded <= refund_reserved AND refund_reserved <= amount",
        )
        batch.drop_constraint(op.f("ck_payments_status"), type_="check")
        batch.create_check_constraint(op.f("ck_payments_status"), _in(_OLD_STATUSES))
        batch.drop_column("authorization_expires_at")
        batch.drop_column("amount_captured")
        batch.drop_column("amount_capturable")
        batch.drop_column("capture_method")
