"""The bus consumer of reconciliation-svc: every change of our payments and refunds, every provider
verdict, every anomaly (queue ``reconciliation.events``), projected into its own tables."""

from __future__ import annotations

EVENTS_QUEUE = "reconciliation.events"
EVENT_BINDING_KEYS = [
    "payments.payment.*.v1",
    "payments.refund.*.v1",
    "providers.provider.payment.*.v1",
    "providers.provider.refund.updated.v1",
    "providers.provider.anomaly.recorded.v1",
    "payments.payment.anomaly.recorded.v1",
]
