"""reconciliation-svc's own metrics, registered on the service's registry (no process-global state)."""

from __future__ import annotations

from billing_runtime.metrics import Metrics
from prometheus_client import Counter, Gauge


class ReconciliationMetrics:
    def __init__(self, metrics: Metrics) -> None:
        registry = metrics.registry
        self.base = metrics
        # kind: payment | refund; result: succeeded | failed | pending | not_found | unavailable | error.
        self.janitor_checks = Counter(
            "reconciliation_janitor_checks_total",
            "Status checks the janitor asked providers-svc for, by the answer",
            ["kind", "result"],
            registry=registry,
        )
        # A check whose confirmed outcome providers-svc had not yet published (it publishes it now, as
        # the missed provider event): a heal.
        self.janitor_heals = Counter(
            "reconciliation_janitor_heals_total",
            "Missed provider outcomes the janitor's checks made providers-svc publish",
            ["kind", "provider"],
            registry=registry,
        )
        # A gauge, not a counter: a discrepancy moves between states (open → resolved), so the number
        # in each state goes down as well as up. Refreshed from the table by the worker.
        self.discrepancies = Gauge(
            "reconciliation_discrepancies",
            "Discrepancies by kind, provider and state",
            ["kind", "provider", "state"],
            registry=registry,
        )
