"""The bus consumer: every payment event (refunds and disputes join by binding key later)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from billing_contracts.events import parse_event
from billing_runtime.bus import Message
from billing_runtime.metrics import Metrics
from pydantic import ValidationError

from webhook_dispatcher.domain.event_types import is_forwarded
from webhook_dispatcher.services.deps import WebhookDeps
from webhook_dispatcher.services.ingest import ingest_event

log = logging.getLogger(__name__)

EVENTS_QUEUE = "webhooks.events"
EVENT_BINDING_KEYS = ["payments.#"]


def events_handler(deps: WebhookDeps, metrics: Metrics) -> Callable[[Message], Awaitable[None]]:
    async def handle(message: Message) -> None:
        try:
            event = parse_event(message.body)
        except ValidationError:
            # A message we can never parse would poison the queue: count it and drop it.
            log.error("unparseable event %s on %s", message.message_id, message.routing_key)
            metrics.events_consumed.labels("unknown", "rejected").inc()
            return
        if not is_forwarded(event.event_type):
            metrics.events_consumed.labels(event.event_type, "ignored").inc()
            return
        await ingest_event(deps, event)
        metrics.events_consumed.labels(event.event_type, "stored").inc()

    return handle
