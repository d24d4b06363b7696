"""The service's Prometheus metrics: the shared ones plus provider callbacks and the sandbox bank."""

from __future__ import annotations

from billing_runtime.metrics import Metrics
from prometheus_client import Counter, Histogram


class ProvidersMetrics(Metrics):
    """One registry per application (no process-global state)."""

    def __init__(self) -> None:
        super().__init__("providers")
        self.transactions_started = Counter(
            "provider_transactions_started_total",
            "Provider transactions created by a start request",
            ["provider"],
            registry=self.registry,
        )
        self.callbacks_received = Counter(
            "provider_callbacks_total",
            "Provider callbacks received, by what they did",
            ["provider", "result"],
            registry=self.registry,
        )
        # Bad input (API issue 11): malformed, unauthenticated or forged callbacks, answered in the
        # provider's own error format and changing nothing. ``reason`` is a short stable slug
        # (bad_json, bad_form, missing_field, bad_signature, bad_auth, unknown_method, ...).
        # The integration guide's name: provider callback handling time (verify, record, answer), per
        # provider, whatever the answer (api/callbacks/timing.py).
        self.callback_duration = Histogram(
            "billing_webhook_processing_duration_seconds",
            "Time to handle one provider callback (POST /billing/<provider>...), by provider",
            ["provider"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.callbacks_rejected = Counter(
            "provider_callbacks_rejected_total",
            "Provider callbacks refused before they could change anything, by reason",
            ["provider", "reason"],
            registry=self.registry,
        )
        self.anomalies = Counter(
            "provider_anomalies_total",
            "Anomalies recorded: verified provider callbacks carrying money the transaction could not take",
            ["provider", "kind"],
            registry=self.registry,
        )
        self.sandbox_callbacks_sent = Counter(
            "sandbox_bank_callback_attempts_total",
            "Callbacks the sandbox bank tried to deliver, by result",
            ["result"],
            registry=self.registry,
        )
        # Reconciliation (issue 13): what each sync found (``applied``: a missed outcome healed), and
        # the statement lines streamed.
        self.syncs = Counter(
            "provider_syncs_total",
            "Payment syncs asked by reconciliation, by provider and what they did",
            ["provider", "result"],
            registry=self.registry,
        )
        self.statement_lines = Counter(
            "provider_statement_lines_total",
            "Statement lines streamed to reconciliation, by provider",
            ["provider"],
            registry=self.registry,
        )
        self.statement_seconds = Histogram(
            "provider_statement_seconds",
            "Time to stream one statement, by provider and outcome (complete or broken)",
            ["provider", "outcome"],
            registry=self.registry,
        )
