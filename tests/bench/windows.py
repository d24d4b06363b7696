"""Saturated windows of the benches that compare the platform with a bare endpoint (``regional.py``,
``stripe_webhooks.py``): both targets run side by side and take turns, window by window, so that a drift
of the machine's speed (a shared VM: the same code's CPU per event moves by up to 1.8 times between runs
minutes apart) falls on both alike; the ratio is the median of each round's."""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

import cpu
from run import Proc

# Idle: every process of the bench together under this share of one core over ``QUIET_SAMPLE`` seconds
# (an idle platform's relays, watchers and heartbeats take well under 1 %).
QUIET_SHARE = 0.05
QUIET_SAMPLE = 0.1
QUIET_LIMIT = 30.0


@dataclass
class Window:
    """One saturated window of one target: units of work done (events, flows), seconds, CPU ms per unit
    by process, and the loop's own statistics (latencies, errors)."""

    done: int
    elapsed: float
    cpu_ms: dict[str, float]
    stats: Any

    @property
    def per_second(self) -> float:
        return self.done / self.elapsed


def turn(round_number: int, targets: list[Any]) -> list[Any]:
    """The targets in the order they take their windows in a round: A B, then B A, then A B..."""
    return targets if round_number % 2 == 0 else list(reversed(targets))


def per_second(windows: list[Window]) -> float:
    """Units per second over all the windows."""
    return sum(w.done for w in windows) / sum(w.elapsed for w in windows)


def cpu_per_unit(windows: list[Window]) -> dict[str, float]:
    """CPU ms per unit by process over all the windows (each window weighted by the units it did)."""
    done = max(sum(w.done for w in windows), 1)
    return {key: round(sum(w.cpu_ms[key] * w.done for w in windows) / done, 3) for key in windows[0].cpu_ms}


def ratios(baseline: list[Window], platform: list[Window]) -> tuple[float, list[float]]:
    """The platform's rate against the baseline's, round by round (adjacent windows), and their median."""
    by_round = [p.per_second / b.per_second for b, p in zip(baseline, platform, strict=True)]
    return round(statistics.median(by_round), 3), [round(r, 3) for r in by_round]


async def quiet(procs: list[Proc]) -> None:
    """Until the machine is idle: what the last window's target deferred past its own settling (a
    consumer finishing its messages, say) is done before the next window starts, so that it lands in
    nobody's window rather than in the next target's. ``procs``: the targets' processes (with
    their children, as ``cpu.snapshot`` groups them); PostgreSQL, RabbitMQ and every other process count
    too, this one (the load generator) does not."""
    groups = {"load generator": os.getpid(), **{p.name: p.popen.pid for p in procs}}
    deadline = time.perf_counter() + QUIET_LIMIT
    while time.perf_counter() < deadline:
        before = cpu.snapshot(groups)
        await asyncio.sleep(QUIET_SAMPLE)
        after = cpu.snapshot(groups)
        busy = sum(after[k] - before[k] for k in after if k != "load generator")
        if busy < QUIET_SHARE * QUIET_SAMPLE:
            return
    print(f"the machine was not idle within {QUIET_LIMIT:.0f} s; going on", file=sys.stderr, flush=True)


# Whether an outbox still holds events to publish, read as its relay's claim reads it: the key's index in
# order, stopping at the first (the LIMIT hidden from the planner, as in ``opaque_limit``). A plain
# ``EXISTS`` was planned as a scan of the whole heap, every page of rows already published (1,200 to 1,500
# buffers per poll), polled every 20 ms inside the measured window.
OUTBOX_PENDING = "SELECT id FROM outbox WHERE dead_at IS NULL ORDER BY id LIMIT (SELECT 1)"


async def outbox_pending(conn: Any) -> bool:
    return await conn.fetchval(OUTBOX_PENDING) is not None
