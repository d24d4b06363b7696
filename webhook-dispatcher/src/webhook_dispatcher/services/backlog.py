"""The backlog gauges: how many deliveries are due and how long the oldest has waited, read every few
seconds by each worker (a cross-tenant read: the whole database's backlog)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from billing_contracts.envelope import utcnow

from webhook_dispatcher.db.repositories import due_stats
from webhook_dispatcher.metrics import WebhookMetrics
from webhook_dispatcher.services.uow import WebhooksUnitOfWork


async def watch_backlog(uow: Callable[[], WebhooksUnitOfWork], metrics: WebhookMetrics, interval: float = 5.0) -> None:
    while True:
        # A failed read (the database away) leaves the gauges as they were; the next one catches up.
        with contextlib.suppress(Exception):
            now = utcnow()
            async with uow() as unit:
                count, oldest = await due_stats(unit.session, now)
            metrics.backlog.set(count)
            metrics.oldest_pending_age.set(0 if oldest is None else (now - oldest).total_seconds())
        await asyncio.sleep(interval)
