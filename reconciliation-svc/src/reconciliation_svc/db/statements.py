"""Statements and their lines: created, staged in bulk (COPY), resolved to our ids, read back.

Every function runs on the caller's connection, inside the caller's transaction: an import or a
fetched statement is staged whole or not at all (REC-20).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from billing_contracts.envelope import utcnow
from billing_contracts.statements import StatementRecord
from billing_runtime.db import table_of
from billing_runtime.ids import new_id
from sqlalchemy import delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from reconciliation_svc.db.run_models import StatementLineRow, StatementRow

STATEMENT_ID_PREFIX = "stm"
_LINE_COLUMNS = (
    "statement_id",
    "seq",
    "line",
    "kind",
    "provider",
    "provider_reference",
    "payment_reference",
    "payment_id",
    "refund_id",
    "match_key",
    "amount",
    "currency",
    "status",
    "occurred_at",
    "origin",
)
_statements = table_of(StatementRow)
_lines = table_of(StatementLineRow)


@dataclass
class Staging:
    """A statement being staged: its id and what has been written so far."""

    id: str
    records: int = 0
    skipped: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None

    def saw(self, at: datetime) -> None:
        self.first_at = at if self.first_at is None else min(self.first_at, at)
        self.last_at = at if self.last_at is None else max(self.last_at, at)


async def create_statement(
    conn: AsyncConnection,
    *,
    provider: str,
    account_id: str,
    origin: str,
    created_by: str,
    filename: str | None = None,
    sha256: str | None = None,
    run_id: str | None = None,
) -> Staging:
    staging = Staging(new_id(STATEMENT_ID_PREFIX))
    await conn.execute(
        _statements.insert().values(
            id=staging.id,
            provider=provider,
            account_id=account_id,
            origin=origin,
            filename=filename,
            sha256=sha256,
            run_id=run_id,
            created_by=created_by,
            created_at=utcnow(),
        )
    )
    return staging


async def stage_lines(conn: AsyncConnection, staging: Staging, records: Iterable[StatementRecord]) -> None:
    """Append ``records`` to the statement with one COPY (a settlement file of 100,000 lines is
    staged in a couple of seconds). A line's key starts as the id of ours that it names, if any."""
    rows: list[tuple[Any, ...]] = []
    for record in records:
        staging.records += 1
        staging.saw(record.occurred_at)
        key = record.payment_id if record.kind == "payment" else record.refund_id
        rows.append(
            (
                staging.id,
                staging.records,
                record.line,
                record.kind,
                record.provider,
                record.provider_reference,
                record.payment_reference,
                record.payment_id,
                record.refund_id,
                key,
                record.amount,
                record.currency,
                record.status,
                record.occurred_at,
                record.origin,
            )
        )
    if not rows:
        return
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    # asyncpg's COPY on the very connection (and transaction) the caller holds.
    await driver.copy_records_to_table("statement_lines", records=rows, columns=_LINE_COLUMNS)


async def finish_statement(conn: AsyncConnection, staging: Staging) -> None:
    await conn.execute(
        update(_statements)
        .where(_statements.c.id == staging.id)
        .values(
            records=staging.records,
            skipped=staging.skipped,
            first_at=staging.first_at,
            last_at=staging.last_at,
        )
    )


# Lines that name none of our ids are given one from the projection, by the provider's id: a payment
# from our payment (its provider reference) or from a provider verdict we saw; a refund from our refund
# (its provider refund id); then from another line of the statement with the same provider id; what is
# left is keyed by the provider's id alone ("ref:<id>"), which no id of ours can equal.
_RESOLVE = (
    """UPDATE statement_lines l SET match_key = p.id FROM recon_payments p
       WHERE l.statement_id = :sid AND l.kind = 'payment' AND l.match_key IS NULL
         AND p.provider = l.provider AND p.provider_reference = l.provider_reference""",
    """UPDATE statement_lines l SET match_key = t.payment_id FROM recon_provider_transactions t
       WHERE l.statement_id = :sid AND l.kind = 'payment' AND l.match_key IS NULL
         AND t.provider = l.provider AND t.provider_reference = l.provider_reference""",
    """UPDATE statement_lines l SET match_key = r.id FROM recon_refunds r
       WHERE l.statement_id = :sid AND l.kind = 'refund' AND l.match_key IS NULL
         AND r.provider = l.provider AND r.provider_refund_id = l.provider_reference""",
    # A dispute's line: keyed by its dispute and its direction (``<dispute id>:withdrawn|reinstated``),
    # the dispute found by its own id; a line that names no dispute (its reference is its payment's) by
    # its payment (our id in the line, else the provider's id of the payment), of several disputes of
    # one payment the least id. A line naming a dispute we do not know is never another dispute's.
    """UPDATE statement_lines l SET match_key = d.provider_dispute_id || ':' || l.status FROM recon_disputes d
       WHERE l.statement_id = :sid AND l.kind = 'dispute' AND l.match_key IS NULL
         AND d.provider = l.provider AND d.provider_dispute_id = l.provider_reference""",
    """UPDATE statement_lines l SET match_key = d.dispute || ':' || l.status
       FROM (SELECT provider, payment_id, min(provider_dispute_id) AS dispute FROM recon_disputes
             GROUP BY provider, payment_id) d
       WHERE l.statement_id = :sid AND l.kind = 'dispute' AND l.match_key IS NULL AND d.provider = l.provider
         AND l.provider_reference = l.payment_reference
         AND d.payment_id = COALESCE(
             l.payment_id,
             (SELECT p.id FROM recon_payments p
              WHERE p.provider = l.provider AND p.provider_reference = l.payment_reference LIMIT 1),
             (SELECT t.payment_id FROM recon_provider_transactions t
              WHERE t.provider = l.provider AND t.provider_reference = l.payment_reference LIMIT 1))""",
    """UPDATE statement_lines l SET match_key = s.match_key FROM statement_lines s
       WHERE l.statement_id = :sid AND s.statement_id = :sid AND l.match_key IS NULL
         AND s.match_key IS NOT NULL AND s.kind = l.kind AND s.provider_reference = l.provider_reference
         AND (l.kind <> 'dispute' OR s.status = l.status)""",
    """UPDATE statement_lines
       SET match_key = 'ref:' || provider_reference || CASE WHEN kind = 'dispute' THEN ':' || status ELSE '' END
       WHERE statement_id = :sid AND match_key IS NULL""",
)


async def resolve_match_keys(conn: AsyncConnection, statement_id: str) -> None:
    for statement in _RESOLVE:
        await conn.execute(text(statement), {"sid": statement_id})


async def find_by_hash(conn: AsyncConnection, account_id: str, sha256: str) -> StatementRow | None:
    row = (
        await conn.execute(
            select(_statements).where(_statements.c.account_id == account_id, _statements.c.sha256 == sha256)
        )
    ).first()
    return StatementRow(**row._mapping) if row is not None else None


async def get_statement(conn: AsyncConnection, statement_id: str) -> StatementRow | None:
    row = (await conn.execute(select(_statements).where(_statements.c.id == statement_id))).first()
    return StatementRow(**row._mapping) if row is not None else None


async def drop_lines(conn: AsyncConnection, statement_id: str) -> None:
    await conn.execute(delete(_lines).where(_lines.c.statement_id == statement_id))


async def drop_statements_of_run(conn: AsyncConnection, run_id: str) -> None:
    """A fetched statement left by an attempt of the run that did not finish (its lines cascade)."""
    await conn.execute(delete(_statements).where(_statements.c.run_id == run_id, _statements.c.origin == "api"))
