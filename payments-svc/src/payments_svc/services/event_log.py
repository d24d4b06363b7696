"""The tenant's event log (``GET /v1/events``): every public event this service emits, and what other
services decide about the tenant's integration, such as the webhook dispatcher disabling an endpoint
(logged once per event, under the publisher's event id, so the log and the webhooks name the same
event).

Its order. API.md promises that a client paging with ``after`` from the last id it saw never misses an
event, however many are written concurrently. An id taken at insert (``seq``) cannot keep that
promise: it is visible only at commit, so a transaction that took seq 1 may commit after one that took
seq 2, and a poller that read 2 has already passed 1 for good. Each event therefore gets
its ``position`` after it has committed, from a sequencer: a pass takes a lock held until it commits,
then numbers the committed events without one, in seq order, from a sequence. Passes run one at a
time, and each draws its numbers after the one before it committed, so a position becomes visible
only after every lower position is visible: a poller paging by position can never be overtaken. The
log shows only placed events.

Who runs the sequencer: the worker, every ``event_log_interval`` seconds, and every ``GET /v1/events``
just before it reads, so a client always finds the events committed before its request. The create
path is untouched (its insert gives no position and touches one partial index, as the old seq index
cost).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from billing_contracts.envelope import EventBase
from billing_runtime.db import table_of
from billing_runtime.inbox import inbox_row
from billing_runtime.writes import InsertRows

from payments_svc.db.event_log import place_events
from payments_svc.db.models import TenantEvent, inbox
from payments_svc.services.uow import PaymentsUnitOfWork, event_log_row

LOGGED_EVENTS_CONSUMER = "payments.logged-events"
# Events placed per sequencer pass (one statement); a longer backlog takes several passes.
PLACE_BATCH = 1000


async def log_foreign_event(uow: Callable[[], PaymentsUnitOfWork], event: EventBase) -> bool:
    """Append ``event`` to its tenant's log unless this consumer saw it before; True when appended."""
    async with uow() as unit:
        unit.write(InsertRows(table_of(TenantEvent), [event_log_row(event)]))
        return await unit.commit_unless_exists(inbox_row(inbox, LOGGED_EVENTS_CONSUMER, event.event_id))


async def place_committed_events(uow: Callable[[], PaymentsUnitOfWork], batch: int = PLACE_BATCH) -> int:
    """One sequencer pass: how many events it placed."""
    async with uow() as unit:
        placed = await place_events(unit.session, batch)
        await unit.commit()
    return placed


async def place_until_done(uow: Callable[[], PaymentsUnitOfWork], batch: int = PLACE_BATCH) -> None:
    """Sequencer passes until one finds less than a full batch."""
    while await place_committed_events(uow, batch) >= batch:
        pass


async def sequencer_loop(uow: Callable[[], PaymentsUnitOfWork], interval: float) -> None:
    while True:
        await place_until_done(uow)
        await asyncio.sleep(interval)
