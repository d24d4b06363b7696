"""The bus consumer: every public event of another service (payment.* and dispute.* today; refund.* as
soon as its contracts exist)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from billing_contracts.envelope import EventBase
from billing_runtime.bus import Message
from billing_runtime.consuming import parse_or_drop
from billing_runtime.metrics import Metrics

from webhook_dispatcher.domain.event_types import binding_keys, is_forwarded
from webhook_dispatcher.services.batching import GroupCommit
from webhook_dispatcher.services.deps import WebhookDeps
from webhook_dispatcher.services.ingest import ingest_events

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
        event = parse_or_drop(message, metrics)
        if event is None:
            return
        if not is_forwarded(event.event_type, event.source):
            metrics.events_consumed.labels(event.event_type, "ignored").inc()
            return
        await batches.submit(event)
        metrics.events_consumed.labels(event.event_type, "stored").inc()

    return handle
