"""Metrics of payments-svc beyond the ones every service has (``billing_runtime.metrics``)."""

from __future__ import annotations

import re

from billing_contracts.envelope import utcnow
from billing_runtime.metrics import Metrics
from prometheus_client import Counter, Histogram

from payments_svc.db.models import Payment
from payments_svc.domain.payment import PaymentStatus

# A failure ``reason`` label is the payment's failure code, which a provider chooses: bounded here (its
# shape, and at most this many distinct values per process; the rest count as "other"), so a provider
# inventing codes cannot grow the series without end.
MAX_FAILURE_REASONS = 50
_REASON = re.compile(r"^[a-z0-9_.-]{1,64}$")
OTHER_REASON = "other"


class PaymentMetrics:
    """Registered in the service's own registry, so they appear on its ``/metrics``."""

    def __init__(self, metrics: Metrics) -> None:
        self.registry = metrics.registry
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
        # The integration guide's names: payments reaching SUCCEEDED / FAILED (the provider's verdict
        # applied), counted after the commit that applied it, once per payment.
        self.succeeded = Counter(
            "billing_payments_success_total",
            "Payments that reached SUCCEEDED",
            registry=metrics.registry,
        )
        self.failed = Counter(
            "billing_payments_failure_total",
            "Payments that reached FAILED, by failure code",
            ["reason"],
            registry=metrics.registry,
        )
        # Attempts a provider declined or cancelled while the payment stayed payable (PAY-6): the
        # payment is CREATED again, and counts in ``failed`` only if it closes without being paid.
        self.attempts_failed = Counter(
            "billing_payment_attempts_failed_total",
            "Payment attempts that failed while the payment stayed payable, by failure code",
            ["reason"],
            registry=metrics.registry,
        )
        self.processing = Histogram(
            "billing_payment_processing_duration_seconds",
            "From a payment's creation to its final verdict (SUCCEEDED or FAILED), by outcome",
            ["outcome"],
            registry=metrics.registry,
            buckets=(1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600),
        )
        self._reasons: set[str] = set()

    def payment_final(self, payment: Payment, status: PaymentStatus) -> None:
        """Count a payment the state machine moved to SUCCEEDED or FAILED, or back to CREATED after a
        failed attempt (call after the commit)."""
        seconds = max((utcnow() - payment.created_at).total_seconds(), 0.0)
        if status == PaymentStatus.SUCCEEDED:
            self.succeeded.inc()
            self.processing.labels("succeeded").observe(seconds)
        elif status == PaymentStatus.FAILED:
            self.failed.labels(self.failure_reason(payment.failure_code)).inc()
            self.processing.labels("failed").observe(seconds)
        elif status == PaymentStatus.CREATED:
            self.attempts_failed.labels(self.failure_reason(payment.failure_code)).inc()

    def failure_reason(self, code: str | None) -> str:
        """``code`` as a label value of bounded cardinality."""
        if not code or not _REASON.fullmatch(code):
            return OTHER_REASON
        if code not in self._reasons:
            if len(self._reasons) >= MAX_FAILURE_REASONS:
                return OTHER_REASON
            self._reasons.add(code)
        return code
