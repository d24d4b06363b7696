"""The gateway's Prometheus metrics: the shared HTTP ones plus upstream failures and throttling."""

from __future__ import annotations

from billing_runtime.metrics import Metrics
from prometheus_client import Counter


class GatewayMetrics(Metrics):
    def __init__(self) -> None:
        super().__init__("gateway")
        self.upstream_failures = Counter(
            "gateway_upstream_failures_total",
            "Proxied requests answered 503 because the upstream was unreachable or too slow",
            ["upstream", "reason"],
            registry=self.registry,
        )
        self.callbacks_refused = Counter(
            "gateway_callbacks_refused_total",
            "Provider callbacks (/billing) the gateway answered itself, in the provider's format: too_large, "
            "bad_path, unavailable (providers-svc unreachable)",
            ["provider", "reason"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "gateway_rate_limited_total", "Requests refused by the per-tenant rate limit", registry=self.registry
        )
        self.token_requests_refused = Counter(
            "gateway_token_requests_refused_total",
            "POST /v1/auth/token answers refused before any hashing: 429 per client or per app, 503 when busy",
            ["reason"],
            registry=self.registry,
        )
