"""Queries on reconciliation runs: queue (once per scheduled account and period), claim with a lease,
report progress under the lease, finish, list and read."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from billing_contracts.envelope import utcnow
from billing_runtime.db import table_of
from billing_runtime.ids import new_id
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from reconciliation_svc.db.models import ReconPayment
from reconciliation_svc.db.run_models import RunRow
from reconciliation_svc.domain.periods import Period
from reconciliation_svc.domain.runs import Progress

RUN_ID_PREFIX = "rrun"
_runs = table_of(RunRow)
_payments = table_of(ReconPayment)


@dataclass(frozen=True)
class NewRun:
    account_id: str
    period: Period
    trigger: str
    started_by: str
    provider: str | None = None
    statement_id: str | None = None


def _row(row: object) -> RunRow:
    return RunRow(**row._mapping)  # type: ignore[attr-defined]


def _values(run: NewRun) -> dict[str, object]:
    now = utcnow()
    return {
        "id": new_id(RUN_ID_PREFIX),
        "account_id": run.account_id,
        "provider": run.provider,
        "period_from": run.period.first_day,
        "period_to": run.period.last_day,
        "statement_id": run.statement_id,
        "trigger": run.trigger,
        "started_by": run.started_by,
        "state": "queued",
        "summary": {},
        "created_at": now,
        "updated_at": now,
    }


async def queue_run(conn: AsyncConnection, run: NewRun) -> tuple[RunRow, bool]:
    """The queued run, new (True) or the one already queued or running for the same account, period
    and statement (False): asking twice does the work once (REC-23)."""
    inserted = (
        await conn.execute(pg_insert(_runs).values(**_values(run)).on_conflict_do_nothing().returning(_runs))
    ).first()
    if inserted is not None:
        return _row(inserted), True
    existing = (
        await conn.execute(
            select(_runs).where(
                _runs.c.account_id == run.account_id,
                _runs.c.period_from == run.period.first_day,
                _runs.c.period_to == run.period.last_day,
                _runs.c.statement_id.is_not_distinct_from(run.statement_id),
                _runs.c.state.in_(("queued", "running")),
            )
        )
    ).first()
    if existing is None:
        # The active one finished between the two statements: queue anew.
        return await queue_run(conn, run)
    return _row(existing), False


async def queue_scheduled(conn: AsyncConnection, runs: Sequence[NewRun]) -> int:
    """Queue the day's scheduled runs; one that any replica already queued (on any day) is skipped."""
    if not runs:
        return 0
    result = await conn.execute(pg_insert(_runs).values([_values(r) for r in runs]).on_conflict_do_nothing())
    return int(result.rowcount)


async def known_accounts(conn: AsyncConnection) -> list[tuple[str, str | None]]:
    """Every provider account the projection has payments of, with its provider."""
    rows = await conn.execute(
        select(_payments.c.provider_account_id, func.min(_payments.c.provider))
        .where(_payments.c.provider_account_id.is_not(None))
        .group_by(_payments.c.provider_account_id)
    )
    return [(r[0], r[1]) for r in rows]


async def provider_of_account(conn: AsyncConnection, account_id: str) -> str | None:
    row = (
        await conn.execute(select(_payments.c.provider).where(_payments.c.provider_account_id == account_id).limit(1))
    ).first()
    return row[0] if row is not None else None


async def claim_run(conn: AsyncConnection, lease: timedelta, run_id: str | None = None) -> RunRow | None:
    """Take the oldest queued run (or ``run_id``), or a running one whose worker's lease ran out, with
    a new lease."""
    now = utcnow()
    candidate = (
        select(_runs.c.id)
        .where(
            or_(
                _runs.c.state == "queued",
                and_(_runs.c.state == "running", _runs.c.claimed_until < now),
            ),
            *([_runs.c.id == run_id] if run_id is not None else []),
        )
        .order_by(_runs.c.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    row = (
        await conn.execute(
            update(_runs)
            .where(_runs.c.id == candidate)
            .values(
                state="running",
                claim_token=secrets.token_hex(8),
                claimed_until=now + lease,
                attempts=_runs.c.attempts + 1,
                started_at=func.coalesce(_runs.c.started_at, now),
                lines_read=0,
                matched=0,
                discrepancies_found=0,
                summary={},
                updated_at=now,
            )
            .returning(_runs)
        )
    ).first()
    return _row(row) if row is not None else None


async def report_progress(
    conn: AsyncConnection, run_id: str, token: str, progress: Progress, lease: timedelta, *, provider: str | None
) -> bool:
    """Store the progress and extend the lease; False when the lease was lost (another worker took
    the run over), and this worker must stop."""
    now = utcnow()
    result = await conn.execute(
        update(_runs)
        .where(_runs.c.id == run_id, _runs.c.claim_token == token, _runs.c.state == "running")
        .values(
            lines_read=progress.lines_read,
            matched=progress.matched,
            discrepancies_found=progress.discrepancies_found,
            summary=dict(progress.by_kind),
            provider=func.coalesce(_runs.c.provider, provider),
            claimed_until=now + lease,
            updated_at=now,
        )
    )
    return bool(result.rowcount)


async def finish_run(
    conn: AsyncConnection,
    run_id: str,
    token: str | None,
    progress: Progress,
    *,
    provider: str | None,
    error_code: str | None = None,
    error: str | None = None,
) -> RunRow | None:
    now = utcnow()
    condition = [_runs.c.id == run_id, _runs.c.state.in_(("queued", "running"))]
    if token is not None:
        condition.append(_runs.c.claim_token == token)
    row = (
        await conn.execute(
            update(_runs)
            .where(*condition)
            .values(
                state="failed" if error_code else "succeeded",
                lines_read=progress.lines_read,
                matched=progress.matched,
                discrepancies_found=progress.discrepancies_found,
                summary=dict(progress.by_kind),
                provider=func.coalesce(_runs.c.provider, provider),
                error_code=error_code,
                error=error,
                claim_token=None,
                claimed_until=None,
                finished_at=now,
                updated_at=now,
            )
            .returning(_runs)
        )
    ).first()
    return _row(row) if row is not None else None


async def get_run(conn: AsyncConnection, run_id: str) -> RunRow | None:
    row = (await conn.execute(select(_runs).where(_runs.c.id == run_id))).first()
    return _row(row) if row is not None else None


async def list_runs(
    conn: AsyncConnection, *, limit: int, offset: int = 0, state: str | None = None, account_id: str | None = None
) -> list[RunRow]:
    """Newest first."""
    query = select(_runs).order_by(_runs.c.id.desc()).limit(limit).offset(offset)
    if state is not None:
        query = query.where(_runs.c.state == state)
    if account_id is not None:
        query = query.where(_runs.c.account_id == account_id)
    return [_row(r) for r in await conn.execute(query)]
