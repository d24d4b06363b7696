"""Saturated windows of the benches that compare the platform with a bare endpoint (``regional.py``,
``stripe_webhooks.py``): both targets run side by side and take turns, window by window, so that a drift
of the machine's speed (a shared VM: the same code's CPU per event moves by up to 1.8 times between runs
minutes apart) falls on both alike; the ratio is the median of each round's."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any


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
