"""Matching a staged statement with the projection: the join's rows grouped by key as they stream
(one key's rows at a time in memory), compared by ``domain.matching``, the discrepancies recorded once
each (REC-1) in small transactions, progress reported as it goes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from reconciliation_svc.db.discrepancies import record_discrepancy
from reconciliation_svc.db.matching import joined_rows
from reconciliation_svc.domain.discrepancies import NewDiscrepancy
from reconciliation_svc.domain.matching import Group, Matcher, RecordKind
from reconciliation_svc.domain.periods import Window
from reconciliation_svc.domain.runs import Progress
from reconciliation_svc.run_metrics import RunMetrics

# Found discrepancies are written (and progress reported) after this many compared rows, or sooner
# when this many discrepancies wait: a run's progress is never older than a few thousand rows.
REPORT_EVERY = 5000
FLUSH_FOUND = 200

ProgressHook = Callable[[Progress], Awaitable[None]]


@dataclass(frozen=True)
class MatchJob:
    statement_id: str
    account_id: str
    window: Window
    run_id: str | None
    provider: str | None
    # Whether the statement reports disputes' money (a Stripe settlement file): only then are the
    # projected disputes compared with it, else every withdrawal would be missing at the provider.
    disputes: bool = False


async def groups(engine: AsyncEngine, matcher: Matcher, job: MatchJob, progress: Progress) -> AsyncIterator[Group]:
    """The join's rows folded into one ``Group`` per key (the rows come ordered by key)."""
    current: Group | None = None
    async for row in joined_rows(
        engine, matcher.kind, statement_id=job.statement_id, account_id=job.account_id, window=job.window
    ):
        if current is None or row.key != current.key:
            if current is not None:
                yield current
            current = Group(row.key, ours=row.ours)
        progress.matched += 1
        if row.theirs is not None:
            current.add(row.theirs, matcher.is_money(row.theirs))
    if current is not None:
        yield current


class _Recorder:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        progress: Progress,
        on_progress: ProgressHook,
        metrics: RunMetrics | None,
    ) -> None:
        self.sessions = sessions
        self.progress = progress
        self.on_progress = on_progress
        self.metrics = metrics
        self.pending: list[NewDiscrepancy] = []
        self.reported_at = 0

    async def add(self, found: list[NewDiscrepancy]) -> None:
        self.pending.extend(found)
        if len(self.pending) >= FLUSH_FOUND or self.progress.matched - self.reported_at >= REPORT_EVERY:
            await self.flush()

    async def flush(self) -> None:
        if self.pending:
            new: list[NewDiscrepancy] = []
            async with self.sessions() as session:
                for found in self.pending:
                    if await record_discrepancy(session, found):
                        new.append(found)
                await session.commit()
            # Counted only once committed: a run that dies here counts them on its next attempt.
            for found in new:
                self.progress.found(found.kind)
                if self.metrics is not None:
                    self.metrics.discrepancies_found.labels(found.kind, found.provider).inc()
            self.pending.clear()
        self.reported_at = self.progress.matched
        await self.on_progress(self.progress)


async def match_statement(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    job: MatchJob,
    progress: Progress,
    on_progress: ProgressHook,
    metrics: RunMetrics | None = None,
) -> None:
    """Compare the statement's payments, then its refunds (then its disputes' money movements, when it
    reports them), with ours; record what disagrees."""
    recorder = _Recorder(sessions, progress, on_progress, metrics)
    kinds: tuple[RecordKind, ...] = ("payment", "refund", "dispute") if job.disputes else ("payment", "refund")
    for kind in kinds:
        matcher = Matcher(kind, job.account_id, job.window, job.run_id, job.provider)
        async for group in groups(engine, matcher, job, progress):
            await recorder.add(matcher.compare(group))
    await recorder.flush()
