"""The dispatcher's own metrics, registered on the service's registry (no process-global state)."""

from __future__ import annotations

from billing_runtime.metrics import Metrics
from prometheus_client import Counter, Gauge, Histogram


class WebhookMetrics:
    def __init__(self, metrics: Metrics) -> None:
        registry = metrics.registry
        self.base = metrics
        # outcome: succeeded | retrying | failed (a delivery's state after an attempt).
        self.deliveries = Counter(
            "webhook_deliveries_total", "Webhook delivery attempts by resulting outcome", ["outcome"], registry=registry
        )
        self.attempt_latency = Histogram(
            "webhook_attempt_duration_seconds",
            "Latency of one webhook HTTP attempt",
            registry=registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.refused = Counter("webhook_ssrf_refusals_total", "Attempts refused by the SSRF guard", registry=registry)
        self.backlog = Gauge("webhook_due_backlog", "Deliveries due now and not yet attempted", registry=registry)
        self.oldest_pending_age = Gauge(
            "webhook_oldest_pending_age_seconds", "How long the oldest due delivery has been waiting", registry=registry
        )
        # Pending deliveries failed with no further attempt: reason disabled | deleted (their endpoint's).
        self.given_up = Counter(
            "webhook_deliveries_given_up_total",
            "Pending deliveries failed with no further attempt because their endpoint was disabled or deleted",
            ["reason"],
            registry=registry,
        )
        self.in_flight = Gauge("webhook_attempts_in_flight", "Attempts this process is making now", registry=registry)
