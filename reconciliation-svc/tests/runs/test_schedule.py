"""The worker's schedule and claims: yesterday's run of every known account is queued once per account
and day however many replicas ask (REC-22); a run is done by one worker at a time, taken over when its
worker's lease runs out, and failed after too many attempts (REC-23)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest
from billing_runtime.metrics import Metrics
from billing_runtime.plumbing import Plumbing
from reconciliation_svc.db import runs as run_queries
from reconciliation_svc.domain.periods import Period
from reconciliation_svc.domain.runs import Progress
from reconciliation_svc.jobs.runs import RunWorker
from reconciliation_svc.run_metrics import RunMetrics
from reconciliation_svc.settings import Settings
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from .conftest import Seeder

MORNING = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)


def replica(engine: AsyncEngine, settings: Settings) -> RunWorker:
    """A worker process of its own: its own plumbing and metrics, the one shared database."""
    metrics = Metrics("reconciliation")
    plumbing = Plumbing(service="reconciliation", database_url=settings.database_url, metrics=metrics, engine=engine)
    plumbing.open_engine()
    return RunWorker(settings, plumbing, RunMetrics(metrics))


async def scheduled(engine: AsyncEngine) -> list[tuple[str, date, date, str, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT account_id, period_from, period_to, trigger, provider FROM reconciliation_runs"
                " ORDER BY account_id"
            )
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


@pytest.fixture
async def accounts(seed: Seeder) -> None:
    await seed.payment("pay_1", account="pac_click")
    await seed.payment("pay_2", account="pac_click")
    await seed.payment("pay_3", account="pac_payme", provider="payme")
    # No account: the sandbox and the simulators are not scheduled.
    await seed.payment("pay_4", account=None, provider="sandbox")


class TestSchedule:
    async def test_replicas_queue_yesterday_once_per_account(
        self, clean_db: AsyncEngine, settings_factory, accounts: None
    ) -> None:  # type: ignore[no-untyped-def]
        settings = settings_factory(schedule_hour=2)
        one, two = replica(clean_db, settings), replica(clean_db, settings)
        counts = await asyncio.gather(one.schedule(MORNING), two.schedule(MORNING))
        assert sorted(counts) == [0, 2]
        day = date(2026, 12, 4)
        expected = [("pac_click", day, day, "schedule", "click"), ("pac_payme", day, day, "schedule", "payme")]
        assert await scheduled(clean_db) == expected
        # Later in the day, and after a restart (a new process remembers nothing): nothing more.
        assert await one.schedule(MORNING + timedelta(hours=5)) == 0
        assert await replica(clean_db, settings).schedule(MORNING + timedelta(hours=20)) == 0
        assert await scheduled(clean_db) == expected
        # Even once the day's runs are done: a scheduled period is never queued again.
        async with clean_db.begin() as conn:
            await conn.execute(text("UPDATE reconciliation_runs SET state = 'succeeded'"))
        assert await replica(clean_db, settings).schedule(MORNING + timedelta(hours=1)) == 0
        # The next day brings the next period.
        assert await one.schedule(MORNING + timedelta(days=1)) == 2
        assert len(await scheduled(clean_db)) == 4

    async def test_nothing_is_queued_before_the_hour(
        self, clean_db: AsyncEngine, settings_factory, accounts: None
    ) -> None:  # type: ignore[no-untyped-def]
        worker = replica(clean_db, settings_factory(schedule_hour=4))
        assert await worker.schedule(MORNING) == 0
        assert await scheduled(clean_db) == []
        assert await worker.schedule(MORNING + timedelta(hours=1)) == 2

    async def test_the_worker_loop_queues_the_day_unless_the_schedule_is_off(
        self, clean_db: AsyncEngine, settings_factory, accounts: None
    ) -> None:  # type: ignore[no-untyped-def]
        off = replica(clean_db, settings_factory(schedule_hour=0, runs_poll_interval=0.05))
        async with clean_db.begin() as conn:
            on_demand, _new = await run_queries.queue_run(
                conn, run_queries.NewRun("pac_click", Period(date(2026, 12, 1), date(2026, 12, 1)), "admin", "t")
            )
        loop = asyncio.create_task(off.run())
        try:
            # The loop went round (it did the run queued on demand) and queued nothing of its own.
            for _ in range(200):
                async with clean_db.connect() as conn:
                    run = await run_queries.get_run(conn, on_demand.id)
                if run is not None and run.state in ("succeeded", "failed"):
                    break
                await asyncio.sleep(0.05)
            assert run is not None and run.state in ("succeeded", "failed")
            assert [r[3] for r in await scheduled(clean_db)] == ["admin"]
        finally:
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)
        on = replica(clean_db, settings_factory(schedule_enabled=True, schedule_hour=0, runs_poll_interval=0.05))
        loop = asyncio.create_task(on.run())
        try:
            for _ in range(200):
                if sorted(r[3] for r in await scheduled(clean_db)) == ["admin", "schedule", "schedule"]:
                    break
                await asyncio.sleep(0.05)
            assert sorted(r[3] for r in await scheduled(clean_db)) == ["admin", "schedule", "schedule"]
        finally:
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)


class TestClaims:
    async def test_two_workers_never_take_the_same_run(self, clean_db: AsyncEngine) -> None:
        async with clean_db.begin() as conn:
            for day in (date(2026, 12, 1), date(2026, 12, 2)):
                await run_queries.queue_run(conn, run_queries.NewRun("pac_a", Period(day, day), "admin", "t"))

        async def claim():  # type: ignore[no-untyped-def]
            async with clean_db.begin() as conn:
                return await run_queries.claim_run(conn, timedelta(seconds=60))

        first, second, third = await asyncio.gather(claim(), claim(), claim())
        taken = [r for r in (first, second, third) if r is not None]
        assert len(taken) == 2
        assert len({r.id for r in taken}) == 2
        assert all(r.state == "running" and r.attempts == 1 for r in taken)

    async def test_a_run_whose_lease_ran_out_is_taken_over_and_the_old_worker_cannot_finish_it(
        self, clean_db: AsyncEngine, seed: Seeder
    ) -> None:
        stale = await seed.claimed_run(lease=60)
        async with clean_db.begin() as conn:
            assert await run_queries.claim_run(conn, timedelta(seconds=60)) is None
            await conn.execute(text("UPDATE reconciliation_runs SET claimed_until = now() - interval '1 second'"))
            again = await run_queries.claim_run(conn, timedelta(seconds=60))
        assert again is not None and again.id == stale.id and again.attempts == 2
        assert again.claim_token != stale.claim_token
        async with clean_db.begin() as conn:
            lease = timedelta(seconds=60)
            assert not await run_queries.report_progress(
                conn, stale.id, stale.claim_token, Progress(), lease, provider=None
            )
            assert await run_queries.finish_run(conn, stale.id, stale.claim_token, Progress(), provider=None) is None
            done = await run_queries.finish_run(conn, again.id, again.claim_token, Progress(), provider=None)
        assert done is not None and done.state == "succeeded"

    async def test_a_run_past_its_attempts_is_failed(
        self, clean_db: AsyncEngine, seed: Seeder, settings_factory
    ) -> None:  # type: ignore[no-untyped-def]
        worker = replica(clean_db, settings_factory(run_max_attempts=1))
        run = await seed.claimed_run(lease=60)
        async with clean_db.begin() as conn:
            await conn.execute(text("UPDATE reconciliation_runs SET claimed_until = now() - interval '1 second'"))
        finished = await worker.run_one(worker.deps(None))
        assert finished is not None and finished.id == run.id
        assert (finished.state, finished.error_code, finished.attempts) == ("failed", "abandoned", 2)
