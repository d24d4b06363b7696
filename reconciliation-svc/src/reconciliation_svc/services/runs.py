"""Run use cases: queue a run (admin API, command line, schedule) and do one (worker, command line).

Doing a run: the statement (an imported file, or providers-svc's statement for the window, staged in
one transaction: all of it or, when the stream breaks, nothing), its lines keyed to our ids, the
streaming match, the run finished with its summary. A failure the run cannot get past (providers-svc
unavailable, a truncated statement) fails it with a stable code; a lost lease stops it silently (the
worker that took it over finishes it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from billing_contracts.statements import StatementRecord
from billing_runtime.db import make_sessionmaker
from sqlalchemy.ext.asyncio import AsyncEngine

from reconciliation_svc.db import runs as run_queries
from reconciliation_svc.db import statements as statement_queries
from reconciliation_svc.db.run_models import RunRow
from reconciliation_svc.domain.periods import Period, Window
from reconciliation_svc.domain.runs import Progress, RunFailed
from reconciliation_svc.domain.settlement_csv import FORMATS
from reconciliation_svc.run_metrics import RunMetrics
from reconciliation_svc.services.matching import MatchJob, match_statement
from reconciliation_svc.services.statements_client import StatementsClient

log = logging.getLogger(__name__)
# The providers whose statement from providers-svc carries disputes' money (Stripe's: its balance
# transactions of the categories dispute and dispute_reversal): a run over one compares the disputes too,
# so a withdrawal it lacks is missing at the provider. The others' statements hold no dispute.
STATEMENTS_WITH_DISPUTES = frozenset({"stripe"})
# Records staged per COPY while a statement streams in.
STAGE_BATCH = 2000

PhaseHook = Callable[[str, Progress], Awaitable[None]]


class LeaseLost(Exception):
    """Another worker took the run over (this one was too slow to extend its lease)."""


@dataclass(frozen=True)
class RunDeps:
    engine: AsyncEngine
    # None where providers-svc is not reachable from (a command line given a CSV file).
    statements: StatementsClient | None
    lease: timedelta
    margin: timedelta
    metrics: RunMetrics | None = None


async def _nothing(_phase: str, _progress: Progress) -> None:
    return None


class _Execution:
    def __init__(self, deps: RunDeps, run: RunRow, on_phase: PhaseHook) -> None:
        self.deps = deps
        self.run = run
        self.on_phase = on_phase
        self.progress = Progress()
        self.provider = run.provider

    async def report(self, phase: str) -> None:
        token = self.run.claim_token
        if token is not None:
            async with self.deps.engine.begin() as conn:
                kept = await run_queries.report_progress(
                    conn, self.run.id, token, self.progress, self.deps.lease, provider=self.provider
                )
            if not kept:
                raise LeaseLost(self.run.id)
        await self.on_phase(phase, self.progress)

    async def fetch(self, window: Window) -> str:
        """Stage providers-svc's statement of the window; its id."""
        if self.deps.statements is None:
            raise RunFailed("provider_unavailable", "no providers-svc to ask for the statement")
        async with self.deps.engine.begin() as conn:
            # What an earlier attempt of this run staged is dropped first.
            await statement_queries.drop_statements_of_run(conn, self.run.id)
            staging = await statement_queries.create_statement(
                conn,
                provider=self.provider or "unknown",
                account_id=self.run.account_id,
                origin="api",
                created_by=f"run {self.run.id}",
                run_id=self.run.id,
            )
            batch: list[StatementRecord] = []
            async for record in self.deps.statements.records(self.run.account_id, window.read_from, window.read_to):
                self.provider = self.provider or record.provider
                batch.append(record)
                if len(batch) >= STAGE_BATCH:
                    await statement_queries.stage_lines(conn, staging, batch)
                    batch.clear()
                    self.progress.lines_read = staging.records
                    await self.report("fetching")
            await statement_queries.stage_lines(conn, staging, batch)
            self.progress.lines_read = staging.records
            await statement_queries.finish_statement(conn, staging)
        return staging.id

    async def execute(self) -> RunRow | None:
        run = self.run
        started = time.monotonic()
        window = Period(run.period_from, run.period_to).window(self.deps.margin)
        statement_id = run.statement_id
        disputes = False
        try:
            if statement_id is None:
                statement_id = await self.fetch(window)
                disputes = self.provider in STATEMENTS_WITH_DISPUTES
            else:
                async with self.deps.engine.connect() as conn:
                    statement = await statement_queries.get_statement(conn, statement_id)
                if statement is None:
                    raise RunFailed("statement_not_found", f"no statement {statement_id}")
                self.provider = self.provider or statement.provider
                self.progress.lines_read = statement.records
                # Only a settlement file that reports disputes' money (Stripe's balance report) is
                # compared with the disputes.
                fmt = FORMATS.get(statement.provider)
                disputes = fmt is not None and fmt.reports_disputes
            async with self.deps.engine.begin() as conn:
                await statement_queries.resolve_match_keys(conn, statement_id)
            await self.report("matching")
            job = MatchJob(statement_id, run.account_id, window, run.id, self.provider, disputes)
            sessions = make_sessionmaker(self.deps.engine)
            await match_statement(
                self.deps.engine, sessions, job, self.progress, lambda _p: self.report("matching"), self.deps.metrics
            )
            if run.statement_id is None:
                async with self.deps.engine.begin() as conn:
                    await statement_queries.drop_lines(conn, statement_id)
            finished = await self._finish()
        except RunFailed as exc:
            log.warning("run %s failed: %s (%s)", run.id, exc.message, exc.code)
            finished = await self._finish(exc)
        self._measure(finished, time.monotonic() - started)
        return finished

    async def _finish(self, failure: RunFailed | None = None) -> RunRow | None:
        async with self.deps.engine.begin() as conn:
            finished = await run_queries.finish_run(
                conn,
                self.run.id,
                self.run.claim_token,
                self.progress,
                provider=self.provider,
                error_code=failure.code if failure else None,
                error=failure.message if failure else None,
            )
        if finished is None:
            raise LeaseLost(self.run.id)
        await self.on_phase("finished", self.progress)
        return finished

    def _measure(self, finished: RunRow | None, seconds: float) -> None:
        metrics = self.deps.metrics
        if metrics is None or finished is None:
            return
        provider = finished.provider or "unknown"
        metrics.runs.labels(provider, finished.state).inc()
        metrics.run_duration.labels(provider, finished.state).observe(seconds)
        metrics.lines_matched.labels(provider).inc(self.progress.matched)


async def execute_run(deps: RunDeps, run: RunRow, on_phase: PhaseHook = _nothing) -> RunRow | None:
    """Do a claimed run to its end; the finished run, or None when another worker took it over."""
    try:
        return await _Execution(deps, run, on_phase).execute()
    except LeaseLost:
        log.warning("run %s was taken over by another worker; this one stops", run.id)
        return None
