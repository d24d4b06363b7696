"""The worker's consumer: refund requests (``refund.created``, published by payments-svc) on the queue
``providers.refund-requests``. Idempotent through ``provider_refunds`` itself (one row per refund id):
a redelivery finds the row it made.

Failures follow billing_runtime.bus: a database outage holds the queue until it is back (no delivery
spent); a provider that cannot be reached is no failure at all (the refund stays ``requested`` and the
retrier asks again), so one provider's outage never holds the other providers' refunds; a request naming
no transaction of its tenant is poison and ends in ``providers.refund-requests.dlq``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from billing_contracts.events import RefundCreatedV1
from billing_runtime.bus import Message
from billing_runtime.consuming import parse_or_drop
from billing_runtime.metrics import Metrics

from providers_svc.services.refunds import Refunds

REFUND_REQUESTS_QUEUE = "providers.refund-requests"
REFUND_REQUEST_KEYS = ["payments.refund.created.v1"]


def refund_request_handler(refunds: Refunds, metrics: Metrics) -> Callable[[Message], Awaitable[None]]:
    async def handle(message: Message) -> None:
        event = parse_or_drop(message, metrics)
        if event is None:
            return
        if not isinstance(event, RefundCreatedV1):
            metrics.events_consumed.labels(event.event_type, "ignored").inc()
            return
        outcome = await refunds.accept(event)
        metrics.events_consumed.labels(event.event_type, outcome).inc()

    return handle
