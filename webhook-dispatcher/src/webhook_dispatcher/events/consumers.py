"""The bus consumer: every public event of another service (payment.* today; refund.* and dispute.* as
soon as their contracts exist)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from billing_contracts.envelope import EventBase
from billing_contracts.events import parse_event
from billing_runtime.bus import Message
from billing_runtime.metrics import Metrics
from pydantic import ValidationError

from webhook_dispatcher.domain.event_types import binding_keys, is_forwarded
from webhook_dispatcher.services.batching import GroupCommit
from webhook_dispatcher.services.deps import WebhookDeps
from webhook_dispatcher.services.ingest import ingest_events

log = logging.getLogger(__name__)

EVENTS_QUEUE = "webhooks.events"
EVENT_BINDING_KEYS = binding_keys()
# Events stored per transaction at most; the broker's prefetch (64) bounds it in practice.
INGEST_BATCH = 128


def events_handler(deps: WebhookDeps, metrics: Metrics) -> Callable[[Message], Awaitable[None]]:
    # The bus calls the handler once per message, concurrently up to its prefetch; a message is
    # acknowledged when its handler returns, i.e. only after the batch holding it committed.
    batches: GroupCommit[EventBase, int] = GroupCommit(
        lambda events: ingest_events(deps, events), max_batch=INGEST_BATCH
    )

    async def handle(message: Message) -> None:
        try:
            event = parse_event(message.body)
        except ValidationError:
            # A message we can never parse would poison the queue: count it and drop it.
            log.error("unparseable event %s on %s", message.message_id, message.routing_key)
            metrics.events_consumed.labels("unknown", "rejected").inc()
            return
        if not is_forwarded(event.event_type, event.source):
            metrics.events_consumed.labels(event.event_type, "ignored").inc()
            return
        await batches.submit(event)
        metrics.events_consumed.labels(event.event_type, "stored").inc()

    return handle
