"""Tables of the matching side: reconciliation runs, the statements they compare (imported settlement
files and the statements fetched from providers-svc) and the statement lines, staged for the join.
On the service's one ``metadata`` (``db/models.py``), migrated by the same Alembic."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from billing_runtime.db import UTCDateTime
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from reconciliation_svc.db.models import Base, ReconPayment, ReconProviderTransaction, ReconRefund
from reconciliation_svc.domain.runs import RUN_STATES, RUN_TRIGGERS


def _one_of(column: str, values: frozenset[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in sorted(values))})"


class RunRow(Base):
    """One run (domain/runs.py). At most one scheduled run per account and period, ever (REC-22), and
    at most one queued or running run per account, period and statement (REC-23)."""

    __tablename__ = "reconciliation_runs"
    __table_args__ = (
        Index("ix_reconciliation_runs_state_id", "state", "id"),
        Index("ix_reconciliation_runs_account_id_id", "account_id", "id"),
        Index(
            "uq_reconciliation_runs_scheduled",
            "account_id",
            "period_from",
            "period_to",
            unique=True,
            postgresql_where=text("trigger = 'schedule'"),
        ),
        Index(
            "uq_reconciliation_runs_active",
            "account_id",
            "period_from",
            "period_to",
            "statement_id",
            unique=True,
            postgresql_where=text("state IN ('queued', 'running')"),
            postgresql_nulls_not_distinct=True,
        ),
        CheckConstraint(_one_of("state", RUN_STATES), name="state"),
        CheckConstraint(_one_of("trigger", RUN_TRIGGERS), name="trigger"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(40))
    # Known once the projection or the statement names it.
    provider: Mapped[str | None] = mapped_column(String(32))
    period_from: Mapped[date] = mapped_column(Date)
    period_to: Mapped[date] = mapped_column(Date)
    # An imported settlement file to compare; None: ask providers-svc for the statement.
    statement_id: Mapped[str | None] = mapped_column(String(40))
    trigger: Mapped[str] = mapped_column(String(16))
    started_by: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    lines_read: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    matched: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    discrepancies_found: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # New discrepancies by kind.
    summary: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # The lease of the worker running it: past claimed_until another worker may take it over.
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class StatementRow(Base):
    """A provider statement: an imported settlement file (``csv``, kept with its lines; the same file
    twice is one statement) or one fetched from providers-svc for a run (``api``; its lines are
    dropped when the run ends, the discrepancies keep the evidence)."""

    __tablename__ = "statements"
    __table_args__ = (
        UniqueConstraint("account_id", "sha256", name="uq_statements_account_id_sha256"),
        CheckConstraint("origin IN ('api', 'csv')", name="origin"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[str] = mapped_column(String(40))
    origin: Mapped[str] = mapped_column(String(8))
    filename: Mapped[str | None] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(String(64))
    records: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # Lines of a known kind that concern no payment of ours (Stripe's fees, payouts).
    skipped: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    first_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    run_id: Mapped[str | None] = mapped_column(String(40))
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class StatementLineRow(Base):
    """One ``StatementRecord`` of a statement, with the key it is matched under (``match_key``: our
    payment or refund id, found from the line or from the projection; ``ref:<provider id>`` when
    neither knows it)."""

    __tablename__ = "statement_lines"
    __table_args__ = (
        PrimaryKeyConstraint("statement_id", "seq", name="pk_statement_lines"),
        Index("ix_statement_lines_match", "statement_id", "kind", "match_key"),
        Index("ix_statement_lines_reference", "statement_id", "provider_reference"),
    )

    statement_id: Mapped[str] = mapped_column(String(40), ForeignKey("statements.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    line: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(8))
    provider: Mapped[str] = mapped_column(String(32))
    provider_reference: Mapped[str] = mapped_column(Text)
    # A dispute line's payment as the provider names it (Stripe ``pi_...``/``ch_...``).
    payment_reference: Mapped[str | None] = mapped_column(Text)
    payment_id: Mapped[str | None] = mapped_column(Text)
    refund_id: Mapped[str | None] = mapped_column(Text)
    match_key: Mapped[str | None] = mapped_column(Text)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    origin: Mapped[str] = mapped_column(String(16))


# The matcher's reads of the projection (db/matching.py), indexed so that a run reads its account's
# period and resolves a provider's ids without a scan of every account's records.
Index(
    "ix_recon_payments_account_time",
    ReconPayment.provider_account_id,
    func.coalesce(ReconPayment.succeeded_at, ReconPayment.created_at),
)
Index("ix_recon_refunds_updated_at", ReconRefund.updated_at)
Index("ix_recon_refunds_provider_refund_id", ReconRefund.provider, ReconRefund.provider_refund_id)
Index(
    "ix_recon_provider_transactions_reference",
    ReconProviderTransaction.provider,
    ReconProviderTransaction.provider_reference,
)
