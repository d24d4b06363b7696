"""The bus consumer of reconciliation-svc: every change of our payments and refunds, every provider
verdict, every dispute state, every anomaly (queue ``reconciliation.events``), projected into its own tables."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from billing_runtime.bus import Message
from billing_runtime.consuming import parse_or_drop
from billing_runtime.metrics import Metrics

from reconciliation_svc.services.projection import ProjectionDeps, apply_event

EVENTS_QUEUE = "reconciliation.events"
EVENT_BINDING_KEYS = [
    "payments.payment.*.v1",
    "payments.refund.*.v1",
    "providers.provider.payment.*.v1",
    "providers.provider.refund.updated.v1",
    "providers.provider.dispute.updated.v1",
    "providers.provider.anomaly.recorded.v1",
    "payments.payment.anomaly.recorded.v1",
]


def events_handler(deps: ProjectionDeps, metrics: Metrics) -> Callable[[Message], Awaitable[None]]:
    # No try/except here: an exception is the bus's to judge (billing_runtime.unavailable.is_outage):
    # a database outage holds the message unacknowledged, anything else is retried and dead-lettered.
    async def handle(message: Message) -> None:
        event = parse_or_drop(message, metrics)
        if event is None:
            return
        outcome = await apply_event(deps, event)
        metrics.events_consumed.labels(event.event_type, outcome).inc()

    return handle
