"""A domain event from the bus becomes stored deliveries, exactly once per event id (inbox)."""

from __future__ import annotations

from billing_contracts.envelope import EventBase
from billing_runtime.inbox import record_once

from webhook_dispatcher.db.models import inbox
from webhook_dispatcher.services.deps import WebhookDeps
from webhook_dispatcher.services.fanout import fan_out

EVENTS_CONSUMER = "webhooks.events"


async def ingest_event(deps: WebhookDeps, event: EventBase) -> int:
    """Record the event and one delivery per matching endpoint in one transaction; return how many
    deliveries were created (0 for a duplicate: WHK-2)."""
    data = event.model_dump(mode="json")["data"]
    async with deps.uow() as uow:
        if not await record_once(uow.session, inbox, EVENTS_CONSUMER, event.event_id):
            return 0
        deliveries = await fan_out(
            uow,
            tenant_id=event.tenant_id,
            event_id=event.event_id,
            event_type=event.event_type,
            created_at=event.occurred_at,
            data=data,
        )
        await uow.commit()
    if deliveries:
        deps.wake()
    return len(deliveries)
