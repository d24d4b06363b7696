"""The janitor (REC-7): payments stuck PROVIDER_PENDING and refunds stuck PENDING are asked of their
provider on a per-object schedule (``domain/schedule.py``). It only asks: providers-svc publishes a
confirmed outcome as the provider event it missed, and every downstream consumer (payments-svc, the
webhooks, this projection) heals from that event by itself."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from billing_contracts.envelope import utcnow
from billing_runtime.task_runs import TaskRuns

from reconciliation_svc.db.janitor import DueCheck, claim_due, record_check
from reconciliation_svc.domain.schedule import CheckSchedule
from reconciliation_svc.metrics import ReconciliationMetrics
from reconciliation_svc.services.providers_http import ProvidersSync, SyncAnswer
from reconciliation_svc.services.uow import ReconUnitOfWork

log = logging.getLogger(__name__)

# Answers that tell nothing about the object: the schedule's step is not spent on them.
_INCONCLUSIVE = frozenset({"unavailable", "error"})
# The name its passes are tracked under (``TaskRuns``).
JANITOR = "janitor"
# Calls to providers-svc in flight at once per pass.
_CONCURRENCY = 8


@dataclass
class JanitorPass:
    checked: int = 0
    healed: int = 0
    results: Counter[str] = field(default_factory=Counter)

    def as_json(self) -> dict[str, object]:
        return {"object": "janitor_run", "checked": self.checked, "healed": self.healed, "results": dict(self.results)}


class Janitor:
    def __init__(
        self,
        uow: Callable[[], ReconUnitOfWork],
        providers: ProvidersSync,
        schedule: CheckSchedule,
        metrics: ReconciliationMetrics,
        *,
        batch: int,
        lease: timedelta,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._uow = uow
        self._providers = providers
        self._schedule = schedule
        self._metrics = metrics
        self._batch = batch
        self._lease = lease
        self._clock = clock

    async def run(self, interval: float, runs: TaskRuns) -> None:
        """The worker's loop: a pass every ``interval`` seconds (a failed pass is logged, not fatal;
        each is tracked as ``janitor``: the status endpoint's)."""
        while True:
            try:
                with runs.track(JANITOR) as counts:
                    done = await self.run_once()
                    counts.update(checked=done.checked, healed=done.healed)
            except Exception:
                log.exception("janitor pass failed; next pass in %ss", interval)
            await asyncio.sleep(interval)

    async def run_once(self) -> JanitorPass:
        """Claim what is due now (both kinds, the oldest first, at most ``batch`` of each), ask about
        each, record each answer. Another worker's pass at the same time claims other objects."""
        now = self._clock()
        lease_until = now + self._lease
        async with self._uow() as unit:
            due = await claim_due(unit.session, now, lease_until, self._batch)
            await unit.commit()
        done = JanitorPass()
        gate = asyncio.Semaphore(_CONCURRENCY)

        async def one(check: DueCheck) -> None:
            async with gate:
                answer = await self._providers.sync("payment" if check.kind == "payment" else "refund", check.id)
            await self._record(check, answer, lease_until)
            done.checked += 1
            done.results[answer.result] += 1
            done.healed += 1 if answer.published else 0

        await asyncio.gather(*(one(check) for check in due))
        return done

    async def _record(self, check: DueCheck, answer: SyncAnswer, lease_until: datetime) -> None:
        now = self._clock()
        inconclusive = answer.result in _INCONCLUSIVE
        next_at: datetime | None = (
            self._schedule.after_failed_check(now) if inconclusive else self._schedule.after_check(check.since, now)
        )
        if unsyncable(check, answer):
            # A refund the provider started (Payme's cancel-after-perform, a Stripe dashboard refund) has
            # no refund id at providers-svc, so its sync is a 404 for ever: recorded once, then left to
            # the provider's own events (callbacks, webhooks) and to the statement runs.
            log.info("janitor: refund %s (%s) was started by the provider; not asked again", check.id, check.provider)
            next_at = None
        async with self._uow() as unit:
            await record_check(
                unit.session,
                check,
                lease_until=lease_until,
                now=now,
                result=answer.result,
                next_check_at=next_at,
                counted=not inconclusive,
            )
            await unit.commit()
        self._metrics.janitor_checks.labels(check.kind, answer.result).inc()
        if answer.published:
            self._metrics.janitor_heals.labels(check.kind, check.provider or "unknown").inc()
            log.info("janitor: %s %s healed (provider outcome %s published)", check.kind, check.id, answer.result)


def unsyncable(check: DueCheck, answer: SyncAnswer) -> bool:
    """A refund providers-svc cannot sync: unknown there (404) although the provider named it (its
    ``provider_refund_id`` is known), i.e. one the provider started. One of ours is named only by a
    verdict providers-svc published, so it is known there; one not named yet may still be on its way to
    providers-svc (its request queued), and is asked again as usual."""
    return check.kind == "refund" and answer.result == "not_found" and check.provider_refund_id is not None
