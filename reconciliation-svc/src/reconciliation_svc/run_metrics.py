"""Metrics of reconciliation runs, on the service's registry (no process-global state)."""

from __future__ import annotations

from billing_runtime.metrics import Metrics
from prometheus_client import Counter, Histogram


class RunMetrics:
    def __init__(self, metrics: Metrics) -> None:
        registry = metrics.registry
        # New ones only: a fact found again (a second run) is not counted again (REC-1).
        self.discrepancies_found = Counter(
            "reconciliation_discrepancies_found_total",
            "Discrepancies found by reconciliation runs, by kind and provider",
            ["kind", "provider"],
            registry=registry,
        )
        self.lines_matched = Counter(
            "reconciliation_lines_matched_total",
            "Statement lines and our records compared by reconciliation runs",
            ["provider"],
            registry=registry,
        )
        self.runs = Counter(
            "reconciliation_runs_total",
            "Reconciliation runs finished, by state",
            ["provider", "state"],
            registry=registry,
        )
        self.run_duration = Histogram(
            "reconciliation_run_duration_seconds",
            "Wall time of a reconciliation run, fetching the statement included",
            ["provider", "state"],
            buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
            registry=registry,
        )
