"""Domain events from the bus become stored deliveries, exactly once per event id (inbox).

The consumer hands events over in batches (``GroupCommit``): one transaction stores a whole batch of
events, their inbox rows and their deliveries, instead of one transaction per event.
"""

from __future__ import annotations

from typing import Any

from billing_contracts.envelope import EventBase, utcnow
from billing_runtime.db import UTCDateTime
from billing_runtime.writes import execute_statement_alone
from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncEngine

from webhook_dispatcher.domain.event_types import matches
from webhook_dispatcher.services.deps import WebhookDeps
from webhook_dispatcher.services.endpoint_copies import EndpointCopies
from webhook_dispatcher.services.fanout import delivery_row, event_body

EVENTS_CONSUMER = "webhooks.events"


async def ingest_event(deps: WebhookDeps, event: EventBase) -> int:
    """Record the event and one delivery per matching endpoint in one transaction; return how many
    deliveries were created (0 for a duplicate: WHK-2)."""
    return (await ingest_events(deps, [event]))[0]


async def ingest_events(deps: WebhookDeps, events: list[EventBase]) -> list[int]:
    """Store every event of the batch that was never seen before and that some endpoint takes, and its
    deliveries, in one transaction (WHK-1, WHK-2); return the number of deliveries created per event,
    in order. An event no endpoint takes leaves no trace (no statement at all when the endpoints'
    copies are current: ``EndpointCopies``)."""
    async with deps.uow() as uow:
        engine = uow.bound_engine
    created = await _ingest(engine, deps.endpoints, events)
    if any(created):
        deps.wake()
    return created


# The endpoints come first (the worker's copies, or a read outside the transaction: as if the batch
# had arrived a moment earlier), then the whole batch is one statement that commits itself, whatever
# its size: the inbox rows and, only for the ids that were new, the events and their deliveries. At a
# steady trickle of events every batch is small and this is its cost.
#
# Only the events that fan out to an endpoint are written, inbox row included: the inbox is there so
# that a redelivered event creates no second delivery, and one that created none has nothing to
# duplicate (redelivered after an endpoint that takes it was created, it goes to that endpoint, as it
# would have had it come a moment later the first time).
_INGEST = text(
    """
    WITH fresh AS (
        INSERT INTO inbox (consumer, message_id, received_at)
        SELECT :consumer, i, :now FROM unnest(CAST(:ids AS varchar[])) AS i
        ON CONFLICT DO NOTHING
        RETURNING message_id
    ), stored AS (
        INSERT INTO webhook_events (id, tenant_id, type, body, created_at, livemode)
        SELECT e.id, e.tenant_id, e.type, e.body, :now, e.livemode
        FROM unnest(CAST(:ids AS varchar[]), CAST(:tenants AS varchar[]), CAST(:types AS varchar[]),
                    CAST(:bodies AS text[]), CAST(:modes AS boolean[])) AS e(id, tenant_id, type, body, livemode)
        WHERE e.id IN (SELECT message_id FROM fresh)
    ), fanned AS (
        INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, event_id, event_type, status,
                                        attempt_count, manual, next_attempt_at, created_at, updated_at, livemode)
        SELECT d.id, d.tenant_id, d.endpoint_id, d.event_id, d.event_type, 'pending', 0, false, :now, :now, :now,
               d.livemode
        FROM unnest(CAST(:d_ids AS varchar[]), CAST(:d_tenants AS varchar[]), CAST(:d_endpoints AS varchar[]),
                    CAST(:d_events AS varchar[]), CAST(:d_types AS varchar[]), CAST(:d_modes AS boolean[]))
             AS d(id, tenant_id, endpoint_id, event_id, event_type, livemode)
        WHERE d.event_id IN (SELECT message_id FROM fresh)
    )
    SELECT message_id FROM fresh
    """
).bindparams(bindparam("now", type_=UTCDateTime()))


async def _ingest(engine: AsyncEngine, copies: EndpointCopies, events: list[EventBase]) -> list[int]:
    created = [0] * len(events)
    first: dict[str, int] = {}
    for n, event in enumerate(events):
        # A batch may hold the same event twice (a redelivery): only its first copy counts.
        first.setdefault(event.event_id, n)
    unique = [events[n] for n in first.values()]
    endpoints = await copies.of(engine, (e.tenant_id for e in unique))
    now = utcnow()
    deliveries: list[dict[str, Any]] = []
    fanned: dict[str, int] = {}
    for event in unique:
        for endpoint in endpoints[event.tenant_id]:
            if matches(endpoint.events, event.event_type):
                deliveries.append(
                    delivery_row(
                        event.tenant_id, endpoint.id, event.event_id, event.event_type, now, livemode=event.livemode
                    )
                )
                fanned[event.event_id] = fanned.get(event.event_id, 0) + 1
    batch = [event for event in unique if event.event_id in fanned]
    if not batch:
        return created
    params = {
        "consumer": EVENTS_CONSUMER,
        "now": now,
        "ids": [e.event_id for e in batch],
        "tenants": [e.tenant_id for e in batch],
        "types": [e.event_type for e in batch],
        "bodies": [
            event_body(e.event_id, e.event_type, e.occurred_at, e.model_dump(mode="json")["data"], livemode=e.livemode)
            for e in batch
        ],
        "modes": [e.livemode for e in batch],
        "d_ids": [d["id"] for d in deliveries],
        "d_tenants": [d["tenant_id"] for d in deliveries],
        "d_endpoints": [d["endpoint_id"] for d in deliveries],
        "d_events": [d["event_id"] for d in deliveries],
        "d_types": [d["event_type"] for d in deliveries],
        "d_modes": [d["livemode"] for d in deliveries],
    }
    for (event_id,) in await execute_statement_alone(engine, _INGEST, params):
        created[first[event_id]] = fanned.get(event_id, 0)
    return created
