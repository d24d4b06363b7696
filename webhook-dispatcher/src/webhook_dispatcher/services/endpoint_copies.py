"""Each tenant's enabled endpoints (id and event filter) as the event consumer needs them for every
batch, kept by each worker instead of read per batch.

Most events of a payment go to no endpoint (a tenant that takes only ``payment.succeeded`` still gets
``payment.created`` and ``payment.pending`` on the bus): with the copy such an event costs the
dispatcher no statement at all, and one that is delivered saves the endpoints' read.

The copy never outlives a change: every change of ``webhook_endpoints`` that can change what an event
fans out to (a new or deleted row, ``enabled``, ``deleted_at``, ``events``) sends ``NOTIFY
webhook_endpoints`` in its transaction (a trigger, so no writer can forget it: the API, the worker's
disabling of a failing endpoint, a later command), and every worker drops its copies when it
arrives. Copies are used only while that LISTEN connection is up (a notification sent while it is down
is lost; the listener drops every copy when it reconnects), and never for longer than ``max_age``,
which bounds a notification lost on a connection that broke without a sign. With ``max_age`` 0 every
batch reads.

An event that arrives in the moment between an endpoint's commit and the notification's arrival is
fanned out as if it had come just before the endpoint: the same as an ingest that read the endpoints
just before the commit, which the database alone allows too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from billing_runtime.prepared import fetch_alone
from sqlalchemy import String, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncEngine

from webhook_dispatcher.db.models import Endpoint

# The channel the trigger of migration ``endpoints_notify`` announces changes on.
CHANNEL = "webhook_endpoints"

_ENDPOINTS = (
    select(Endpoint.id, Endpoint.tenant_id, Endpoint.events)
    .where(
        Endpoint.tenant_id == any_(bindparam("tenants", type_=ARRAY(String()))),
        Endpoint.enabled.is_(True),
        Endpoint.deleted_at.is_(None),
    )
    .order_by(Endpoint.created_at, Endpoint.id)
)


@dataclass(frozen=True)
class EndpointFilter:
    id: str
    events: tuple[str, ...]


class EndpointCopies:
    """One per worker process (see the module). ``listening`` says whether changes can reach this
    process now; without it every batch reads. At most ``max_tenants`` tenants are kept: past that the
    copies start over (a bound on memory, not an eviction policy: the busy tenants come back at once)."""

    def __init__(
        self,
        *,
        max_age: float,
        max_tenants: int = 10_000,
        listening: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_age = max_age
        self.max_tenants = max_tenants
        self.listening = listening
        self.clock = clock
        # tenant → (when read, its enabled endpoints in creation order; empty when it has none).
        self._copies: dict[str, tuple[float, tuple[EndpointFilter, ...]]] = {}
        # Bumped by every invalidation: a read that began before one must not store what it read.
        self.epoch = 0
        self.reads = 0  # reads of the database (tests)

    def invalidate(self) -> None:
        """Drop every copy (a change was announced, or notifications may have been missed)."""
        self._copies.clear()
        self.epoch += 1

    async def of(self, engine: AsyncEngine, tenants: Iterable[str]) -> dict[str, tuple[EndpointFilter, ...]]:
        """Every tenant's enabled endpoints as they are now: the copies where they may be trusted, the
        rest in one read."""
        found: dict[str, tuple[EndpointFilter, ...]] = {}
        missing: list[str] = []
        trusted = self.max_age > 0 and self.listening()
        now = self.clock()
        for tenant in sorted(set(tenants)):
            copy = self._copies.get(tenant)
            if trusted and copy is not None and now - copy[0] < self.max_age:
                found[tenant] = copy[1]
            else:
                missing.append(tenant)
        if not missing:
            return found
        epoch = self.epoch
        rows = await fetch_alone(engine, _ENDPOINTS, {"tenants": missing})
        self.reads += 1
        read: dict[str, list[EndpointFilter]] = {tenant: [] for tenant in missing}
        for row in rows:
            read[row["tenant_id"]].append(EndpointFilter(row["id"], tuple(row["events"])))
        for tenant, endpoints in read.items():
            found[tenant] = tuple(endpoints)
        if epoch == self.epoch and trusted:
            if len(self._copies) + len(missing) > self.max_tenants:
                self._copies.clear()
            for tenant in missing:
                self._copies[tenant] = (now, found[tenant])
        return found
