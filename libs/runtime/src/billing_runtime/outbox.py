"""Transactional outbox: events are rows written in the same transaction as the state change; a relay
publishes them with publisher confirms and deletes them only afterwards (at-least-once, never lost).

In the embedded mode the in-process bus runs the consumers inside the publish: a row whose event a
consumer dead-lettered is kept, marked (``dead_at``, ``dead_queues``, ``dead_reason``), for the
dead-letters CLI (``billing_runtime.outbox_dead_letters``); the relay claims only unmarked rows, and
publishes a replayed one (unmarked, ``dead_queues`` kept) to those queues only."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from datetime import timedelta

from billing_contracts.envelope import EventBase, utcnow
from billing_contracts.routing import routing_key
from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    any_,
    bindparam,
    delete,
    func,
    null,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import ClauseElement

from billing_runtime import tracing
from billing_runtime.bus.base import TARGET_QUEUES_HEADER, Bus, DeadLettered, Message
from billing_runtime.db import UTCDateTime
from billing_runtime.notifications import Notifier, listen_for_notifications
from billing_runtime.outbox_vacuum import VACUUM_EVERY, OutboxVacuum
from billing_runtime.prepared import execute_statement_alone, opaque_limit, picked_once
from billing_runtime.writes import InsertRows

log = logging.getLogger(__name__)

# The longest a relay waits to hand back a batch it could not publish (``_release_quietly``).
RELEASE_BOUND = 5.0


def outbox_table(metadata: MetaData) -> Table:
    """The ``outbox`` table of a service (migrated by that service's Alembic)."""
    return Table(
        "outbox",
        metadata,
        Column("id", BigInteger(), primary_key=True, autoincrement=True),
        Column("event_id", String(64), nullable=False, unique=True),
        Column("routing_key", String(255), nullable=False),
        Column("body", Text(), nullable=False),
        Column("created_at", UTCDateTime(), nullable=False),
        Column("claimed_until", UTCDateTime(), nullable=True),
        Column("claim_token", String(32), nullable=True),
        # Embedded mode: a consumer dead-lettered the event (when, which queues, why); see the module.
        Column("dead_at", UTCDateTime(), nullable=True),
        Column("dead_queues", Text(), nullable=True),
        Column("dead_reason", Text(), nullable=True),
        # The W3C traceparent of the transaction that wrote the event: the relay publishes it as the
        # message's header, so the consumers continue the trace of the request (or message) that caused it.
        Column("traceparent", String(64), nullable=True),
    )


def outbox_row(event: EventBase) -> dict[str, object]:
    """The outbox row for an event (its routing key derives from source, type and version)."""
    return {
        "event_id": event.event_id,
        "routing_key": routing_key(event.source, event.event_type, event.schema_version),
        "body": event.model_dump_json(),
        "created_at": utcnow(),
        "traceparent": tracing.current_traceparent(),
    }


async def outbox_backlog_stats(engine: AsyncEngine, table: Table) -> tuple[int, float]:
    """Events waiting in ``table`` to be published (not those kept as dead letters) and the age in
    seconds of the oldest (0 when none waits): the ``outbox_backlog`` gauges and the status endpoint
    (``billing_runtime.status``) read the same figures, also in a process that runs no relay."""
    t = table
    query = select(func.count(), func.min(t.c.created_at)).where(t.c.dead_at.is_(None))
    async with engine.connect() as conn:
        count, oldest = (await conn.execute(query)).one()
    age = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
    return int(count), max(age, 0.0)


def outbox_insert(table: Table, events: list[EventBase]) -> InsertRows:
    """The statement that writes the events into the outbox, inside the caller's transaction.

    One INSERT for all of them, so their ids follow the emit order the relay publishes in.

    No NOTIFY here on purpose: PostgreSQL serializes the commits of every transaction that issued a
    NOTIFY (a global lock held through the WAL flush), which would cap throughput at one fsync per
    commit. Relays are woken after the commit instead (``Plumbing.after_commit``).
    """
    return InsertRows(table, [outbox_row(e) for e in events])


class OutboxRelay:
    """Claims due rows with a lease (``FOR UPDATE SKIP LOCKED``, so any number of relays can run),
    publishes them, then deletes exactly the rows it still holds the lease on."""

    def __init__(
        self,
        engine: AsyncEngine,
        table: Table,
        bus: Bus,
        *,
        batch_size: int = 200,
        poll_interval: float = 1.0,
        lease: timedelta = timedelta(seconds=30),
        on_published: Callable[[int], None] | None = None,
        first_error_backoff: float = 0.05,
        max_error_backoff: float = 1.0,
        vacuum_every: int = VACUUM_EVERY,
    ) -> None:
        self.engine = engine
        self.table = table
        self.bus = bus
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.lease = lease
        self.on_published = on_published
        self.first_error_backoff = first_error_backoff
        self.max_error_backoff = max_error_backoff
        self._wake = asyncio.Event()
        self._statements = _Statements(table)
        # The table vacuumed every so many rows this relay deleted (``billing_runtime.outbox_vacuum``).
        self._vacuum = OutboxVacuum(engine, table, vacuum_every)

    def wake(self) -> None:
        """Ask the relay to look at the outbox now (called after a commit that wrote events)."""
        self._wake.set()

    async def backlog(self) -> int:
        """Events waiting to be published (not those kept as dead letters)."""
        return (await self.backlog_stats())[0]

    async def backlog_stats(self) -> tuple[int, float]:
        """Events waiting to be published (not those kept as dead letters) and the age in seconds of
        the oldest of them (0 when none waits): a backlog that grows old means the relay is stuck."""
        return await outbox_backlog_stats(self.engine, self.table)

    async def _claim(self) -> tuple[str, list[tuple[int, str, str, str, str | None, str | None]]]:
        token = secrets.token_hex(8)
        now = utcnow()
        params = {"now": now, "limit": self.batch_size, "token": token, "until": now + self.lease}
        rows = await execute_statement_alone(self.engine, self._statements.claim, params)
        return token, sorted(rows)

    async def run_once(self) -> int:
        """Publish one batch; return how many events were published."""
        token, rows = await self._claim()
        if not rows:
            return 0
        ids = [row[0] for row in rows]
        # In id order on one channel: events of one aggregate reach the broker in commit order. The
        # confirms (a disk sync each on a quorum queue) are awaited together, not one after the other:
        # in the webhook bench that took the callback → payments hop from ~3 s to a few hundred ms at
        # 100/s. A failed event stays for the next pass, after any later one that got through;
        # consumers are idempotent and state changes guarded, as for redeliveries.
        try:
            results = await self.bus.publish_many([_message(row) for row in rows])
        except BaseException:
            # The bus could not even try (the broker reconnecting, say): hand the whole batch back now
            # rather than leave it leased, i.e. unpublishable, for the rest of the lease.
            await self._release_quietly(token, ids)
            raise
        published = [row[0] for row, error in zip(rows, results, strict=True) if error is None]
        dead = [(row[0], e) for row, e in zip(rows, results, strict=True) if isinstance(e, DeadLettered)]
        failed = [
            row[0]
            for row, error in zip(rows, results, strict=True)
            if error is not None and not isinstance(error, DeadLettered)
        ]
        if failed:
            first = next(e for e in results if e is not None and not isinstance(e, DeadLettered))
            log.warning(
                "publishing %d of %d events failed; they stay in the outbox", len(failed), len(rows), exc_info=first
            )
        try:
            await self._settle(token, published, failed)
            await self._mark_dead(token, dead)
        except BaseException:
            await self._release_quietly(token, failed)
            raise
        if self.on_published is not None and published:
            self.on_published(len(published))
        await self._vacuum.deleted(len(published))
        if failed:
            raise ConnectionError(f"{len(failed)} events not published")
        return len(published)

    async def _release_quietly(self, token: str, ids: list[int]) -> None:
        """Best effort (the database may be what failed): a row not handed back waits for its lease.
        Bounded (``RELEASE_BOUND``): it also runs while the relay is being cancelled, by a stop that
        must not wait on a database that does not answer."""
        if not ids:
            return
        try:
            async with asyncio.timeout(RELEASE_BOUND):
                await self._settle(token, [], ids)
        except Exception:  # TimeoutError included
            log.warning("could not hand back %d claimed events; they wait for their lease", len(ids))

    async def _mark_dead(self, token: str, dead: list[tuple[int, DeadLettered]]) -> None:
        """Keep each dead-lettered row, marked: which queues gave up on it and why (rare: one statement
        per row)."""
        t = self.table
        for row_id, error in dead:
            async with self.engine.begin() as conn:
                await conn.execute(
                    update(t)
                    .where(t.c.id == row_id, t.c.claim_token == token)
                    .values(
                        dead_at=utcnow(),
                        dead_queues=",".join(sorted(error.queues)),
                        dead_reason="; ".join(f"{q}: {why}" for q, why in sorted(error.queues.items())),
                        claimed_until=None,
                    )
                )

    async def _settle(self, token: str, published: list[int], failed: list[int]) -> None:
        """Delete what was published and hand back what was not, only rows this pass still leases."""
        if published:
            await execute_statement_alone(self.engine, self._statements.delete, {"ids": published, "token": token})
        if failed:
            await execute_statement_alone(self.engine, self._statements.release, {"ids": failed, "token": token})

    async def run(self) -> None:
        """Relay forever: drain, then sleep until woken or the poll interval passes. After a failed
        pass it retries after a short backoff (at most ``max_error_backoff``, and a wake-up ends the
        wait), so events flow again within about a second of the database or broker being back."""
        backoff = self.first_error_backoff
        failing = False
        while True:
            try:
                count = await self.run_once()
            except Exception:
                # The first failure of a streak with its traceback; the rest in one line each.
                log.warning("outbox relay pass failed; retrying in %.2fs", backoff, exc_info=not failing)
                failing = True
                await wait_or_timeout(self._wake, backoff)
                self._wake.clear()
                backoff = min(backoff * 2, self.max_error_backoff)
                continue
            if failing:
                log.warning("outbox relay recovered")
            failing = False
            backoff = self.first_error_backoff
            if count >= self.batch_size:
                continue
            await wait_or_timeout(self._wake, self.poll_interval)
            self._wake.clear()


def _message(row: tuple[int, str, str, str, str | None, str | None]) -> Message:
    _, event_id, key, body, dead_queues, traceparent = row
    headers = {TARGET_QUEUES_HEADER: dead_queues} if dead_queues else {}
    if traceparent:
        headers[tracing.TRACEPARENT] = traceparent
    return Message(routing_key=key, body=body.encode(), message_id=event_id, headers=headers)


class _Statements:
    """The relay's statements, built once per relay: each runs as a transaction of its
    own (``execute_statement_alone``), so a pass costs three round trips (claim, publish, delete)
    instead of seven, and no per-pass SQL compilation. At a few events per pass, as on every
    low-rate hop of the money path, that overhead was most of the relay's cost."""

    def __init__(self, t: Table) -> None:
        ids = bindparam("ids", type_=ARRAY(BigInteger()))
        token = bindparam("token", type_=String())
        due = (
            select(t.c.id)
            .where(
                t.c.dead_at.is_(None),
                t.c.claimed_until.is_(None) | (t.c.claimed_until < bindparam("now", type_=t.c.claimed_until.type)),
            )
            .order_by(t.c.id)
            .limit(opaque_limit(bindparam("limit", type_=Integer())))
            .with_for_update(skip_locked=True)
        )
        self.claim: ClauseElement = (
            update(t)
            .where(picked_once(t.c.id, due))
            .values(claim_token=token, claimed_until=bindparam("until", type_=t.c.claimed_until.type))
            .returning(t.c.id, t.c.event_id, t.c.routing_key, t.c.body, t.c.dead_queues, t.c.traceparent)
        )
        self.delete: ClauseElement = delete(t).where(t.c.id == any_(ids), t.c.claim_token == token)
        self.release: ClauseElement = (
            update(t).where(t.c.id == any_(ids), t.c.claim_token == token).values(claimed_until=null())
        )


async def wait_or_timeout(event: asyncio.Event, seconds: float) -> None:
    """Wait for ``event`` at most ``seconds``. Not ``asyncio.wait_for``: on Python 3.11 it can swallow
    a cancellation that arrives as the wait completes, leaving a background loop unstoppable."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()


__all__ = [
    "Notifier",
    "OutboxRelay",
    "listen_for_notifications",
    "outbox_backlog_stats",
    "outbox_insert",
    "outbox_row",
    "outbox_table",
    "wait_or_timeout",
]
