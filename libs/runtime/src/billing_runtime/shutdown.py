"""A process's graceful stop, shared by ``serve`` (which starts it on the first SIGTERM/SIGINT), the
health routes (``/readyz`` answers 503 from that moment) and the plumbing (which drains consumers,
background loops and the outbox within what is left of the grace period).

The grace period runs from the signal to the exit, all of it:

1. **draining** (``delay`` seconds, 0 by default): ``/readyz`` fails so a load balancer (Kubernetes'
   endpoints) stops sending; everything else goes on as before, requests included, because the
   balancer may still send some until it has seen the readiness fail;
2. listeners close; the consumers are cancelled (no new deliveries); in-flight requests, message
   handlers and webhook deliveries finish; background loops stop;
3. the outbox relay publishes what is committed, as long as time is left (what is not published stays
   in the outbox for the next process: never lost);
4. the broker channels and connection and the database pools close; the process exits 0.

Every wait in steps 2 and 3 ends at ``deadline`` (``CLOSE_MARGIN`` before the grace period ends, which
step 4 needs), and a background task that does not end on its cancellation is left behind after
``plumbing.STOP_BOUND`` (as a channel's close is after ``bus.rabbit.CLOSE_BOUND``), so one await never
answered cannot hold the steps after it; a watchdog ends the process (exit 1) if the grace period
passes anyway, before an orchestrator's SIGKILL would.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from aiohttp import web

# Kept from the grace period for the last step (closing channels, connections and pools).
CLOSE_MARGIN = 1.5
# A process's grace period unless its settings say otherwise (``<PREFIX>_SHUTDOWN_GRACE_SECONDS``):
# more than the longest request a process waits for (the gateway's upstream timeout, 20 s), below
# Kubernetes' terminationGracePeriodSeconds (set it to 40).
DEFAULT_GRACE_SECONDS = 30.0
# The grace period of an app run without ``serve`` (tests with aiohttp's test server).
DEFAULT_GRACE = 10.0


@dataclass
class Shutdown:
    """One per process. ``begin`` is idempotent; until it is called nothing is draining."""

    grace: float = DEFAULT_GRACE
    delay: float = 0.0
    started: float | None = None  # time.monotonic() of the first stop signal
    draining: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        if self.grace <= 0 or self.delay < 0 or self.delay >= self.grace:
            raise ValueError(f"a grace period of {self.grace}s cannot hold a pre-drain delay of {self.delay}s")

    def begin(self) -> None:
        if self.started is None:
            self.started = time.monotonic()
            self.draining.set()

    @property
    def deadline(self) -> float:
        """The monotonic time by which every drain must have ended."""
        start = self.started if self.started is not None else time.monotonic()
        return start + max(self.grace - CLOSE_MARGIN, self.grace / 2)

    def remaining(self) -> float:
        """Seconds left for draining (0 when the budget is spent)."""
        return max(0.0, self.deadline - time.monotonic())


shutdown_key = web.AppKey("shutdown", Shutdown)


def shutdown_of(app: web.Application) -> Shutdown:
    """The process's ``Shutdown`` (set by ``serve``), or a new one of the default grace for an app run
    some other way (aiohttp's test server): the caller keeps it and begins it when its drain starts."""
    return app.get(shutdown_key) or Shutdown()
