"""Domain events from the bus become stored deliveries, exactly once per event id (inbox).

The consumer hands events over in batches (``GroupCommit``): one transaction stores a whole batch of
events, their inbox rows and their deliveries, instead of one transaction per event.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from billing_contracts.envelope import EventBase, utcnow
from billing_runtime.db import UTCDateTime
from billing_runtime.prepared import InTransaction, execute_statement_alone, transaction_alone
from sqlalchemy import Boolean, String, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncEngine

from webhook_dispatcher.crypto import SecretBox
from webhook_dispatcher.domain.event_types import matches
from webhook_dispatcher.services.attempts import Intake, Reservation
from webhook_dispatcher.services.claims import LOCK_ENDPOINTS, as_claimed
from webhook_dispatcher.services.deps import WebhookDeps
from webhook_dispatcher.services.fanout import delivery_row, event_body_of

log = logging.getLogger(__name__)

EVENTS_CONSUMER = "webhooks.events"


async def ingest_event(deps: WebhookDeps, event: EventBase) -> int:
    """Record the event and one delivery per matching endpoint in one transaction; return how many
    deliveries were created (0 for a duplicate: WHK-2)."""
    return (await ingest_events(deps, [event]))[0]


async def ingest_events(deps: WebhookDeps, events: list[EventBase]) -> list[int]:
    """Store every event of the batch that was never seen before and that some endpoint takes, and its
    deliveries, in one transaction (WHK-1, WHK-2); return the number of deliveries created per event,
    in order. An event no endpoint takes leaves no trace (no statement at all when the endpoints'
    copies are current: ``EndpointCopies``). Deliveries this worker's dispatcher can take at once are
    leased to it as they are stored and handed over in-process (``_store_leasing``)."""
    async with deps.uow() as uow:
        engine = uow.bound_engine
    created, unleased = await _ingest(engine, deps, events)
    if unleased:
        deps.wake()
    return created


# One statement stores the batch, whatever its size: the inbox rows and, only for the ids that were new,
# the events and their deliveries. At a steady trickle of events every batch is small and this is its
# cost. Only the events that fan out to an endpoint are written, inbox row included: the inbox is there
# so that a redelivered event creates no second delivery, and one that created none has nothing to
# duplicate (redelivered after an endpoint that takes it was created, it goes to that endpoint, as it
# would have had it come a moment later the first time).
#
# The deliveries flagged ``lease`` of the endpoints in ``:mine`` are stored leased to ``:token`` unless
# the endpoint is ``blocked``: another worker holds a live lease on one of its deliveries (WHK-8), or
# it has an older due delivery nobody holds, which must go first (the claim's order). ``blocked`` reads
# the statement's snapshot, taken after ``:mine`` were locked (``_store_leasing``), so a claim that
# committed before that lock is seen. With ``:mine`` empty no delivery is leased: the plain ingest.
#
# Every array the statement unnests goes through a scalar subquery, ``(SELECT CAST(:ids AS varchar[]))``,
# which hides its length from the planner in every plan (``:mine`` in the lease's ``ANY`` is a filter of a
# few rows, whose length changes no plan's shape). PostgreSQL plans a prepared statement for its values at its first
# five executions, then keeps its generic plan unless those looked cheaper: with the arrays in sight, a
# plan for the values counted their 1 to 4 elements where the generic plan assumes 10, always looked
# cheaper, and the statement was planned afresh at every execution (0.52 ms of planning against 0.36 of
# executing it). Blind to the lengths, both are the same plan, and the generic one is kept.
_INGEST = text(
    """
    WITH fresh AS (
        INSERT INTO inbox (consumer, message_id, received_at)
        SELECT :consumer, i, :now FROM unnest((SELECT CAST(:ids AS varchar[]))) AS i
        ON CONFLICT DO NOTHING
        RETURNING message_id
    ), stored AS (
        INSERT INTO webhook_events (id, tenant_id, type, body, created_at, livemode)
        SELECT e.id, e.tenant_id, e.type, e.body, :now, e.livemode
        FROM unnest((SELECT CAST(:ids AS varchar[])), (SELECT CAST(:tenants AS varchar[])),
                    (SELECT CAST(:types AS varchar[])), (SELECT CAST(:bodies AS text[])),
                    (SELECT CAST(:modes AS boolean[]))) AS e(id, tenant_id, type, body, livemode)
        WHERE e.id IN (SELECT message_id FROM fresh)
    ), blocked AS (
        SELECT m.endpoint_id FROM unnest((SELECT CAST(:mine AS varchar[]))) AS m(endpoint_id)
        WHERE EXISTS (
                SELECT 1 FROM webhook_deliveries AS w
                WHERE w.endpoint_id = m.endpoint_id AND w.claim_token IS NOT NULL AND w.status = 'pending'
                  AND w.claimed_until >= :now AND NOT starts_with(w.claim_token, :worker))
           OR EXISTS (
                SELECT 1 FROM webhook_deliveries AS w
                WHERE w.endpoint_id = m.endpoint_id AND w.status = 'pending' AND w.next_attempt_at <= :now
                  AND (w.claimed_until IS NULL OR w.claimed_until < :now))
    ), fanned AS (
        INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, event_id, event_type, status, attempt_count,
                                        manual, next_attempt_at, created_at, updated_at, livemode,
                                        claim_token, claimed_until)
        SELECT d.id, d.tenant_id, d.endpoint_id, d.event_id, d.event_type, 'pending', 0, false, :now, :now, :now,
               d.livemode, l.token, l.until
        FROM unnest((SELECT CAST(:d_ids AS varchar[])), (SELECT CAST(:d_tenants AS varchar[])),
                    (SELECT CAST(:d_endpoints AS varchar[])), (SELECT CAST(:d_events AS varchar[])),
                    (SELECT CAST(:d_types AS varchar[])), (SELECT CAST(:d_modes AS boolean[])),
                    (SELECT CAST(:d_lease AS boolean[])))
             AS d(id, tenant_id, endpoint_id, event_id, event_type, livemode, lease)
        LEFT JOIN LATERAL (
            SELECT CAST(:token AS varchar) AS token, CAST(:until AS timestamptz) AS until
            WHERE d.lease AND d.endpoint_id = ANY(CAST(:mine AS varchar[]))
              AND d.endpoint_id NOT IN (SELECT endpoint_id FROM blocked)
        ) AS l ON true
        WHERE d.event_id IN (SELECT message_id FROM fresh)
        RETURNING id, claim_token
    )
    SELECT message_id, false FROM fresh
    UNION ALL
    SELECT id, true FROM fanned WHERE claim_token IS NOT NULL
    """
).bindparams(
    bindparam("now", type_=UTCDateTime()),
    bindparam("until", type_=UTCDateTime()),
    bindparam("mine", type_=ARRAY(String())),
    bindparam("d_lease", type_=ARRAY(Boolean())),
)


async def _ingest(engine: AsyncEngine, deps: WebhookDeps, events: list[EventBase]) -> tuple[list[int], bool]:
    """(deliveries created per event, whether some delivery was stored that nobody leased)."""
    created = [0] * len(events)
    first: dict[str, int] = {}
    for n, event in enumerate(events):
        # A batch may hold the same event twice (a redelivery): only its first copy counts.
        first.setdefault(event.event_id, n)
    unique = [events[n] for n in first.values()]
    endpoints = await deps.endpoints.of(engine, (e.tenant_id for e in unique))
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
        return created, False
    params = ingest_params(batch, deliveries, now)
    intake = deps.intake
    reservation = intake.reserve(Counter(d["endpoint_id"] for d in deliveries)) if intake is not None else None
    if intake is not None and reservation is not None and reservation.granted:
        # Shielded: cancelled (a stop's deadline), the statement may still commit its leases, and then
        # they must still be handed over (or, stopping, back) and the room settled; a cancellation
        # between the COMMIT and the hand-over would strand them until their leases expire.
        storing = asyncio.ensure_future(_store_leasing(engine, deps.box, intake, reservation, params, deliveries))
        try:
            rows = await asyncio.shield(storing)
        except asyncio.CancelledError:
            storing.add_done_callback(_log_failure)
            raise
    else:
        rows = [(row[0], False) for row in await execute_statement_alone(engine, _INGEST, params)]
    leased = 0
    for row_id, is_delivery in rows:
        if is_delivery:
            leased += 1
        else:
            created[first[row_id]] = fanned.get(row_id, 0)
    return created, sum(created) > leased


def ingest_params(batch: list[EventBase], deliveries: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """``_INGEST``'s parameters for a plain ingest of ``batch`` and its ``deliveries`` (rows of
    ``delivery_row``): nothing leased (``_store_leasing`` adds what a lease needs)."""
    return {
        "consumer": EVENTS_CONSUMER,
        "now": now,
        "ids": [e.event_id for e in batch],
        "tenants": [e.tenant_id for e in batch],
        "types": [e.event_type for e in batch],
        "bodies": [event_body_of(e) for e in batch],
        "modes": [e.livemode for e in batch],
        "d_ids": [d["id"] for d in deliveries],
        "d_tenants": [d["tenant_id"] for d in deliveries],
        "d_endpoints": [d["endpoint_id"] for d in deliveries],
        "d_events": [d["event_id"] for d in deliveries],
        "d_types": [d["event_type"] for d in deliveries],
        "d_modes": [d["livemode"] for d in deliveries],
        "d_lease": [False] * len(deliveries),
        "mine": [],
        "worker": "",
        "token": None,
        "until": None,
    }


def _log_failure(task: asyncio.Future[Any]) -> None:
    """The store's failure, once its caller is gone (cancelled): nobody else would tell of it. The
    batch's messages are redelivered; the inbox makes that safe."""
    if not task.cancelled() and (error := task.exception()) is not None:
        log.warning("an ingest whose caller was cancelled failed", exc_info=error)


async def _store_leasing(
    engine: AsyncEngine,
    box: SecretBox,
    intake: Intake,
    reservation: Reservation,
    params: dict[str, Any],
    deliveries: list[dict[str, Any]],
) -> list[tuple[str, bool]]:
    """The ingest statement in a transaction that first locks the endpoints the ``reservation`` grants
    room for (SKIP LOCKED: the claim's own lock, so no claim leases them meanwhile), then stores the
    deliveries of those it got leased to this worker, and hands them to its dispatcher after the commit.
    Saves the claim a delivery would otherwise need (its candidates, its locks, the lease UPDATE of the
    row)."""
    used: Counter[str] = Counter()
    try:
        granted = reservation.granted
        lease, now, until = intake.new_lease()
        left = dict(granted)
        flags = []
        for delivery in deliveries:
            take = left.get(delivery["endpoint_id"], 0) > 0
            if take:
                left[delivery["endpoint_id"]] -= 1
            flags.append(take)
        locked: dict[str, Any] = {}

        async def work(tx: InTransaction) -> list[tuple[str, bool]]:
            for row in await tx.fetch(LOCK_ENDPOINTS, {"ids": list(granted)}):
                locked[row["id"]] = SimpleNamespace(**row)
            leasing = {**params, "d_lease": flags, "mine": list(locked), "worker": intake.worker_id}
            stored = await tx.rows(_INGEST, {**leasing, "token": lease.token, "until": until})
            return [(row[0], row[1]) for row in stored]

        rows = await transaction_alone(engine, work)
        leased = {row_id for row_id, is_delivery in rows if is_delivery}
        mine = [d for d in deliveries if d["id"] in leased]
        if mine:
            bodies = dict(zip(params["ids"], params["bodies"], strict=True))
            claimed = as_claimed(
                box,
                locked,
                (
                    (d["id"], d["tenant_id"], d["endpoint_id"], d["event_id"], bodies[d["event_id"]], False)
                    for d in mine
                ),
                lease,
                now,
            )
            used.update(d["endpoint_id"] for d in mine)
            intake.take(reservation, claimed)
        return rows
    finally:
        # Room granted and not used goes back (all of it if the statement failed; a delivery leased and
        # never handed over, which only a crash here could cause, waits for its lease to expire: WHK-4).
        intake.settle(reservation, used)
