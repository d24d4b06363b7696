"""Metrics of payments-svc beyond the ones every service has (``billing_runtime.metrics``)."""

from __future__ import annotations

from billing_runtime.metrics import Metrics
from prometheus_client import Counter


class PaymentMetrics:
    """Registered in the service's own registry, so they appear on its ``/metrics``."""

    def __init__(self, metrics: Metrics) -> None:
        self.anomalies = Counter(
            "payment_anomalies_total",
            "Verified provider outcomes the state machine refused, recorded as anomalies",
            ["kind"],
            registry=metrics.registry,
        )
        # What happened to refunds, per provider: ``created`` (by the tenant, or found started by the
        # provider), ``succeeded``, ``failed``; counted after the commit that recorded it.
        self.refunds = Counter(
            "refunds_total",
            "Refunds created, succeeded and failed",
            ["provider", "event"],
            registry=metrics.registry,
        )
