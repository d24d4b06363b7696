"""The worker's runs: once a day it queues yesterday's run of every account the projection knows
(once per account and day across every replica, REC-22), and it claims queued runs and does them,
one at a time, each under a lease (REC-23)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import date, datetime, timedelta

import aiohttp
from billing_contracts.envelope import utcnow
from billing_runtime.plumbing import Plumbing
from sqlalchemy.ext.asyncio import AsyncEngine

from reconciliation_svc.db import runs as run_queries
from reconciliation_svc.db.run_models import RunRow
from reconciliation_svc.domain.periods import yesterday
from reconciliation_svc.domain.runs import Progress
from reconciliation_svc.run_metrics import RunMetrics
from reconciliation_svc.services.runs import RunDeps, execute_run
from reconciliation_svc.services.statements_client import StatementsClient
from reconciliation_svc.settings import Settings

log = logging.getLogger(__name__)


class RunWorker:
    def __init__(self, settings: Settings, plumbing: Plumbing, metrics: RunMetrics) -> None:
        self.settings = settings
        self.plumbing = plumbing
        self.metrics = metrics
        self._wake = asyncio.Event()
        # The last day this process queued the schedule for (the database keeps it once across all).
        self._scheduled_day: date | None = None

    def wake(self) -> None:
        """A run was queued in this process: look now rather than at the next poll."""
        self._wake.set()

    @property
    def engine(self) -> AsyncEngine:
        assert self.plumbing.engine is not None, "started by the plumbing's cleanup context"
        return self.plumbing.engine

    def deps(self, http: aiohttp.ClientSession | None) -> RunDeps:
        s = self.settings
        client = None
        if http is not None:
            client = StatementsClient(
                http, s.providers_url, s.providers_internal_secret.get_secret_value(), s.request_timeout
            )
        return RunDeps(
            engine=self.engine,
            statements=client,
            lease=timedelta(seconds=s.run_lease_seconds),
            margin=timedelta(seconds=s.match_margin_seconds),
            metrics=self.metrics,
        )

    async def run(self) -> None:
        """The background task (started by the plumbing, restarted by it after a crash)."""
        async with aiohttp.ClientSession() as http:
            deps = self.deps(http)
            while True:
                if self.settings.schedule_enabled:
                    await self.schedule(utcnow())
                while await self.run_one(deps):
                    pass
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.runs_poll_interval)
                self._wake.clear()

    async def schedule(self, now: datetime) -> int:
        """Queue yesterday's run of every known account, once the day's hour has come; the number
        queued by this call (0 when another replica, or an earlier call, did it)."""
        period = yesterday(now)
        if now.hour < self.settings.schedule_hour or self._scheduled_day == period.first_day:
            return 0
        async with self.engine.begin() as conn:
            accounts = await run_queries.known_accounts(conn)
            queued = await run_queries.queue_scheduled(
                conn,
                [
                    run_queries.NewRun(account, period, "schedule", "schedule", provider=provider)
                    for account, provider in accounts
                ],
            )
        self._scheduled_day = period.first_day
        if queued:
            log.info("queued %d scheduled reconciliation runs for %s", queued, period.first_day)
        return queued

    async def run_one(self, deps: RunDeps) -> RunRow | None:
        """Claim and do one run; None when none is waiting."""
        lease = timedelta(seconds=self.settings.run_lease_seconds)
        async with self.engine.begin() as conn:
            run = await run_queries.claim_run(conn, lease)
        if run is None:
            return None
        if run.attempts > self.settings.run_max_attempts:
            async with self.engine.begin() as conn:
                finished = await run_queries.finish_run(
                    conn,
                    run.id,
                    run.claim_token,
                    Progress(),
                    provider=run.provider,
                    error_code="abandoned",
                    error=f"given up after {run.attempts - 1} attempts whose worker stopped mid-run",
                )
            return finished or run
        return await execute_run(deps, run) or run
