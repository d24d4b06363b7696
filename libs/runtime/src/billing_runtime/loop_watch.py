"""How long the process kept its event loop from running: the saturation signal of an async service.

Every request, message and relay batch of a process runs on its one event loop, so a loop that runs
late delays all of them at once: CPU starvation (the process at its core's limit, or the machine
slower), a callback that computes too long, the garbage collector's pauses. Two measurements, exported
on ``/metrics`` (``billing_runtime.metrics.Metrics``):

- ``event_loop_lag_seconds``: how late a timer fired, sampled every ``LAG_INTERVAL`` seconds. A blocked
  stretch is seen when it covers a sample (a stall of a tenth of the interval in one sample of ten), so
  the histogram tells how often and how long the loop is late over time, not every stall; a lag past
  ``LAG_WARNING`` is also logged, with what the collector did meanwhile.
- ``gc_pause_seconds``: every collection of the cyclic garbage collector, by generation, timed exactly
  (``gc.callbacks``) and observed at the next sample: a full collection stops everything in the process.

Both live as long as the application (a cleanup context), so several applications in one process (the
embedded mode) each keep their own, and nothing outlives its application.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from billing_runtime.metrics import Metrics

log = logging.getLogger(__name__)

# One wake-up a second: a sample often enough to see a loop that keeps running late (a scrape reads 15 or
# more), and an idle process pays one timer a second.
LAG_INTERVAL = 1.0
LAG_WARNING = 0.1


class GcPauses:
    """Times each collection while installed as a ``gc.callbacks`` entry. The callback only notes the
    pause: it runs wherever a collection starts, possibly inside code holding a metric's lock, which
    observing there would take again (a lock that is not reentrant: a deadlock). The lag's watcher
    hands the pauses to ``gc_pause_seconds`` at its next sample (``drain``)."""

    def __init__(self) -> None:
        self._started: float | None = None
        self._pauses: list[tuple[int, float]] = []

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        # A stop without its start: installed while a collection ran (another application starting).
        if self._started is not None:
            self._pauses.append((info["generation"], time.perf_counter() - self._started))
            self._started = None

    def drain(self) -> list[tuple[int, float]]:
        """The pauses since the last drain, (generation, seconds) each."""
        pauses, self._pauses = self._pauses, []
        return pauses


async def watch_lag(
    metrics: Metrics, pauses: GcPauses, *, interval: float = LAG_INTERVAL, warning: float = LAG_WARNING
) -> None:
    """Observe how late each ``interval`` timer fires, and the collector's pauses meanwhile, until
    cancelled."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + interval
        await asyncio.sleep(interval)
        late = max(loop.time() - due, 0.0)
        metrics.loop_lag.observe(late)
        longest = 0.0
        for generation, seconds in pauses.drain():
            metrics.gc_pause.labels(str(generation)).observe(seconds)
            longest = max(longest, seconds)
        if late > warning:
            log.warning(
                "the event loop ran %.0f ms late (the longest garbage collection meanwhile: %.0f ms)",
                late * 1000,
                longest * 1000,
            )


def loop_watch(metrics: Metrics) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context (``app.cleanup_ctx``) measuring the loop's lag and the collector's pauses
    while the application runs."""

    async def ctx(_app: web.Application) -> AsyncIterator[None]:
        pauses = GcPauses()
        gc.callbacks.append(pauses)
        task = asyncio.create_task(watch_lag(metrics, pauses), name="loop-watch")
        try:
            yield
        finally:
            gc.callbacks.remove(pauses)
            task.cancel()
            # Waited for, not awaited: a cancellation of this cleanup itself must not be swallowed.
            await asyncio.wait([task])
            if not task.cancelled() and task.exception() is not None:
                log.error("the event loop's watch failed", exc_info=task.exception())

    return ctx
