"""The ``reconciliation_discrepancies{kind,provider,state}`` gauge, refreshed from the table by the
worker: the table is the truth (another process may resolve one), so it is read, never counted here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from reconciliation_svc.db.discrepancies import DiscrepancyRepository
from reconciliation_svc.metrics import ReconciliationMetrics
from reconciliation_svc.services.uow import ReconUnitOfWork

log = logging.getLogger(__name__)


async def refresh_discrepancy_gauge(
    uow: Callable[[], ReconUnitOfWork], metrics: ReconciliationMetrics, seen: set[tuple[str, str, str]]
) -> None:
    """Set every (kind, provider, state) found; those ``seen`` before and gone now go back to 0."""
    async with uow() as unit:
        counts = await DiscrepancyRepository(unit.session).counts()
    current = {(kind, provider, state): n for kind, provider, state, n in counts}
    for labels in seen - current.keys():
        metrics.discrepancies.labels(*labels).set(0)
    for labels, n in current.items():
        metrics.discrepancies.labels(*labels).set(n)
    seen.update(current)


async def watch_discrepancies(
    uow: Callable[[], ReconUnitOfWork], metrics: ReconciliationMetrics, interval: float
) -> None:
    seen: set[tuple[str, str, str]] = set()
    while True:
        try:
            await refresh_discrepancy_gauge(uow, metrics, seen)
        except Exception:
            log.warning("could not refresh the discrepancy gauge", exc_info=True)
        await asyncio.sleep(interval)
