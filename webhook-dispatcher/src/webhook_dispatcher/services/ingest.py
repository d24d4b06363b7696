"""Domain events from the bus become stored deliveries, exactly once per event id (inbox).

The consumer hands events over in batches (``GroupCommit``): one transaction stores a whole batch of
events, their inbox rows and their deliveries, instead of one transaction per event.
"""

from __future__ import annotations

from billing_contracts.envelope import EventBase, utcnow
from sqlalchemy import insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from webhook_dispatcher.db.models import Delivery, Endpoint, WebhookEvent, inbox
from webhook_dispatcher.domain.event_types import matches
from webhook_dispatcher.services.deps import WebhookDeps
from webhook_dispatcher.services.fanout import delivery_row, event_body

EVENTS_CONSUMER = "webhooks.events"


async def ingest_event(deps: WebhookDeps, event: EventBase) -> int:
    """Record the event and one delivery per matching endpoint in one transaction; return how many
    deliveries were created (0 for a duplicate: WHK-2)."""
    return (await ingest_events(deps, [event]))[0]


async def ingest_events(deps: WebhookDeps, events: list[EventBase]) -> list[int]:
    """Store every event of the batch that was never seen before, and its deliveries, in one
    transaction (WHK-1, WHK-2); return the number of deliveries created per event, in order."""
    now = utcnow()
    created = [0] * len(events)
    async with deps.uow() as uow:
        session = uow.session
        dialect = session.get_bind().dialect.name
        upsert = pg_insert if dialect == "postgresql" else sqlite_insert
        ids = list(dict.fromkeys(e.event_id for e in events))
        fresh = set(
            (
                await session.execute(
                    upsert(inbox)
                    .values([{"consumer": EVENTS_CONSUMER, "message_id": i, "received_at": now} for i in ids])
                    .on_conflict_do_nothing()
                    .returning(inbox.c.message_id)
                )
            ).scalars()
        )
        todo: list[tuple[int, EventBase]] = []
        for n, event in enumerate(events):
            # A batch may hold the same event twice (a redelivery): only its first copy counts.
            if event.event_id in fresh:
                fresh.discard(event.event_id)
                todo.append((n, event))
        if not todo:
            await uow.commit()
            return created
        tenants = {e.tenant_id for _, e in todo}
        endpoint_rows = (
            await session.execute(
                select(Endpoint.id, Endpoint.tenant_id, Endpoint.events)
                .where(Endpoint.tenant_id.in_(tenants), Endpoint.enabled.is_(True), Endpoint.deleted_at.is_(None))
                .order_by(Endpoint.created_at, Endpoint.id)
            )
        ).all()
        event_rows = []
        delivery_rows = []
        for n, event in todo:
            data = event.model_dump(mode="json")["data"]
            event_rows.append(
                {
                    "id": event.event_id,
                    "tenant_id": event.tenant_id,
                    "type": event.event_type,
                    "body": event_body(event.event_id, event.event_type, event.occurred_at, data),
                    "created_at": now,
                }
            )
            for endpoint_id, tenant_id, filter_ in endpoint_rows:
                if tenant_id == event.tenant_id and matches(filter_, event.event_type):
                    delivery_rows.append(
                        delivery_row(event.tenant_id, endpoint_id, event.event_id, event.event_type, now)
                    )
                    created[n] += 1
        # Core inserts of the tables, not the ORM bulk path: compiled once and cached.
        await session.execute(insert(WebhookEvent.__table__), event_rows)
        if delivery_rows:
            await session.execute(insert(Delivery.__table__), delivery_rows)
        await uow.commit()
    if any(created):
        deps.wake()
    return created
