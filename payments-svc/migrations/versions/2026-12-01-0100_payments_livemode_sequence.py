"""payments: livemode, sequence, sweep schedule and CHECK constraints; event log position; anomalies

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 01:00:00
"""

import billing_runtime.db
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_STATUSES = (
    "CREATED",
    "PROVIDER_PENDING",
    "SUCCEEDED",
    "FAILED",
    "EXPIRED",
    "CANCELLED",
    "PARTIALLY_REFUNDED",
    "REFUNDED",
)


def upgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("livemode", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column("sequence", sa.BigInteger(), server_default="0", nullable=False))
        batch.add_column(sa.Column("sweep_at", billing_runtime.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("sweep_attempts", sa.Integer(), server_default="0", nullable=False))
    # Every change a payment went through so far was one history row: its sequence goes on from there.
    op.execute(
        "UPDATE payments SET sweep_at = expires_at, sequence = "
        "(SELECT count(*) FROM payment_status_history h WHERE h.payment_id = payments.id)"
    )
    statuses = ", ".join(f"'{s}'" for s in _STATUSES)
    with op.batch_alter_table("payments") as batch:
        batch.alter_column("sweep_at", existing_type=billing_runtime.db.UTCDateTime(timezone=True), nullable=False)
        batch.drop_index("ix_payments_status_expires")
        batch.create_index("ix_payments_status_sweep", ["status", "sweep_at"], unique=False)
        batch.create_check_constraint(op.f("ck_payments_status"), f"status IN ({statuses})")
        batch.create_check_constraint(op.f("ck_payments_amount_positive"), "amount > 0")
        batch.create_check_constraint(
            op.f("ck_payments_amount_refunded_bounds"), "amount_refunded >= 0 AND amount_refunded <= amount"
        )

    # The event log's position (see payments_svc/services/event_log.py).
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("position", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("livemode", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.execute("CREATE SEQUENCE events_position_seq AS bigint")
    # Rows logged before this revision are all committed: they keep their order, ahead of the rest.
    op.execute(
        "UPDATE events SET position = s.pos FROM "
        "(SELECT seq, nextval('events_position_seq') AS pos FROM events ORDER BY seq) s "
        "WHERE events.seq = s.seq"
    )
    op.drop_index("ix_events_tenant_seq", table_name="events")
    op.create_index(
        "ix_events_tenant_position",
        "events",
        ["tenant_id", "position"],
        unique=False,
        postgresql_where=sa.text("position IS NOT NULL"),
    )
    op.create_index(
        "ix_events_unsequenced", "events", ["seq"], unique=False, postgresql_where=sa.text("position IS NULL")
    )

    op.create_table(
        "anomalies",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("payment_id", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("expected_amount", sa.BigInteger(), nullable=True),
        sa.Column("expected_currency", sa.String(length=3), nullable=True),
        sa.Column("payment_status", sa.String(length=24), nullable=True),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("event", sa.JSON(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", billing_runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anomalies")),
        sa.UniqueConstraint("event_id", name=op.f("uq_anomalies_event_id")),
    )
    op.create_index("ix_anomalies_tenant_created", "anomalies", ["tenant_id", "created_at"], unique=False)
    op.create_index(op.f("ix_anomalies_payment_id"), "anomalies", ["payment_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_anomalies_payment_id"), table_name="anomalies")
    op.drop_index("ix_anomalies_tenant_created", table_name="anomalies")
    op.drop_table("anomalies")
    op.drop_index("ix_events_unsequenced", table_name="events")
    op.drop_index("ix_events_tenant_position", table_name="events")
    op.create_index("ix_events_tenant_seq", "events", ["tenant_id", "seq"], unique=False)
    op.execute("DROP SEQUENCE events_position_seq")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("livemode")
        batch.drop_column("position")
    with op.batch_alter_table("payments") as batch:
        batch.drop_constraint(op.f("ck_payments_amount_refunded_bounds"), type_="check")
        batch.drop_constraint(op.f("ck_payments_amount_positive"), type_="check")
        batch.drop_constraint(op.f("ck_payments_status"), type_="check")
        batch.drop_index("ix_payments_status_sweep")
        batch.create_index("ix_payments_status_expires", ["status", "expires_at"], unique=False)
        batch.drop_column("sweep_attempts")
        batch.drop_column("sweep_at")
        batch.drop_column("sequence")
        batch.drop_column("livemode")
