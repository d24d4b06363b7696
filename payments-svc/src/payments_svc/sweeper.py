"""Background loops of the worker: expire overdue payments (and apply the refund verdicts parked on
payments that settled), prune old idempotency keys."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from billing_contracts.envelope import utcnow
from billing_runtime.task_runs import TaskRuns

from payments_svc.db.repositories import delete_idempotency_keys_before
from payments_svc.services.lifecycle import LifecycleDeps, sweep_overdue
from payments_svc.services.parked_verdicts import replay_parked

log = logging.getLogger(__name__)


# The names their passes are tracked under (``TaskRuns``): the status endpoint's ``janitor``.
EXPIRY = "expiry"
IDEMPOTENCY_PRUNING = "idempotency-pruning"


async def expiry_loop(deps: LifecycleDeps, interval: float, runs: TaskRuns) -> None:
    while True:
        with runs.track(EXPIRY) as counts:
            counts["expired"] = await sweep_overdue(deps)
            counts["parked_verdicts_applied"] = await replay_parked(deps)
        await asyncio.sleep(interval)


async def idempotency_pruning_loop(
    deps: LifecycleDeps, retention: timedelta, runs: TaskRuns, interval: float = 3600
) -> None:
    while True:
        with runs.track(IDEMPOTENCY_PRUNING) as counts:
            async with deps.uow() as uow:
                removed = await delete_idempotency_keys_before(uow.session, utcnow() - retention)
                await uow.commit()
            counts["removed"] = removed
        if removed:
            log.info("pruned %d idempotency keys older than %s", removed, retention)
        await asyncio.sleep(interval)
