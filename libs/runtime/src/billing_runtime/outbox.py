"""Transactional outbox: events are rows written in the same transaction as the state change; a relay
publishes them with publisher confirms and deletes them only afterwards (at-least-once, never lost)."""

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

from billing_runtime.bus.base import Bus, Message
from billing_runtime.db import UTCDateTime, is_postgres
from billing_runtime.writes import InsertRows, execute_statement_alone

log = logging.getLogger(__name__)


def outbox_table(metadata: MetaData) -> Table:
    """The ``outbox`` table of a service (migrated by that service's Alembic)."""
    return Table(
        "outbox",
        metadata,
        # BIGINT on PostgreSQL; INTEGER on SQLite so the column is its autoincrementing rowid.
        Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
        Column("event_id", String(64), nullable=False, unique=True),
        Column("routing_key", String(255), nullable=False),
        Column("body", Text(), nullable=False),
        Column("created_at", UTCDateTime(), nullable=False),
        Column("claimed_until", UTCDateTime(), nullable=True),
        Column("claim_token", String(32), nullable=True),
    )


def outbox_row(event: EventBase) -> dict[str, object]:
    """The outbox row for an event (its routing key derives from source, type and version)."""
    return {
        "event_id": event.event_id,
        "routing_key": routing_key(event.source, event.event_type, event.schema_version),
        "body": event.model_dump_json(),
        "created_at": utcnow(),
    }


def outbox_insert(table: Table, events: list[EventBase]) -> InsertRows:
    """The statement that writes the events into the outbox, inside the caller's transaction.

    One INSERT for all of them, so their ids follow the emit order the relay publishes in.

    No NOTIFY here on purpose: PostgreSQL serializes the commits of every transaction that issued a
    NOTIFY (a global lock held through the WAL flush), which would cap throughput at one fsync per
    commit. Relays are woken after the commit instead (``Plumbing.after_commit``).
    """
    return InsertRows(table, [outbox_row(e) for e in events])


class OutboxRelay:
    """Claims due rows with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so any number of relays
    can run), publishes them, then deletes exactly the rows it still holds the lease on."""

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
    ) -> None:
        self.engine = engine
        self.table = table
        self.bus = bus
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.lease = lease
        self.on_published = on_published
        self._wake = asyncio.Event()
        self._statements = _PostgresStatements(table) if is_postgres(engine) else None

    def wake(self) -> None:
        """Ask the relay to look at the outbox now (called after a commit that wrote events)."""
        self._wake.set()

    async def backlog(self) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(self.table))).scalar_one())

    async def _claim(self) -> tuple[str, list[tuple[int, str, str, str]]]:
        t = self.table
        token = secrets.token_hex(8)
        now = utcnow()
        if self._statements is not None:
            params = {"now": now, "limit": self.batch_size, "token": token, "until": now + self.lease}
            rows = await execute_statement_alone(self.engine, self._statements.claim, params)
            return token, sorted(rows)  # type: ignore[arg-type]
        due = (
            select(t.c.id)
            .where((t.c.claimed_until.is_(None)) | (t.c.claimed_until < now))
            .order_by(t.c.id)
            .limit(self.batch_size)
        )
        if is_postgres(self.engine):
            due = due.with_for_update(skip_locked=True)
        stmt = (
            update(t)
            .where(t.c.id.in_(due.scalar_subquery()))
            .values(claim_token=token, claimed_until=now + self.lease)
            .returning(t.c.id, t.c.event_id, t.c.routing_key, t.c.body)
        )
        async with self.engine.begin() as conn:
            rows = (await conn.execute(stmt)).all()
        return token, sorted((r.id, r.event_id, r.routing_key, r.body) for r in rows)

    async def run_once(self) -> int:
        """Publish one batch; return how many events were published."""
        token, rows = await self._claim()
        if not rows:
            return 0
        # In id order on one channel: events of one aggregate reach the broker in commit order. The
        # confirms (a disk sync each on a quorum queue) are awaited together, not one after the other:
        # in the webhook bench that took the callback → payments hop from ~3 s to a few hundred ms at
        # 100/s. A failed event stays for the next pass, after any later one that got through;
        # consumers are idempotent and state changes guarded, as for redeliveries.
        results = await self.bus.publish_many(
            [Message(routing_key=key, body=body.encode(), message_id=event_id) for _, event_id, key, body in rows]
        )
        published = [row[0] for row, error in zip(rows, results, strict=True) if error is None]
        failed = [row[0] for row, error in zip(rows, results, strict=True) if error is not None]
        if failed:
            first = next(error for error in results if error is not None)
            log.warning(
                "publishing %d of %d events failed; they stay in the outbox", len(failed), len(rows), exc_info=first
            )
        await self._settle(token, published, failed)
        if self.on_published is not None and published:
            self.on_published(len(published))
        if failed:
            raise ConnectionError(f"{len(failed)} events not published")
        return len(published)

    async def _settle(self, token: str, published: list[int], failed: list[int]) -> None:
        """Delete what was published and hand back what was not, only rows this pass still leases."""
        if self._statements is not None:
            if published:
                await execute_statement_alone(self.engine, self._statements.delete, {"ids": published, "token": token})
            if failed:
                await execute_statement_alone(self.engine, self._statements.release, {"ids": failed, "token": token})
            return
        t = self.table
        async with self.engine.begin() as conn:
            if published:
                await conn.execute(delete(t).where(t.c.id.in_(published), t.c.claim_token == token))
            if failed:
                await conn.execute(
                    update(t).where(t.c.id.in_(failed), t.c.claim_token == token).values(claimed_until=None)
                )

    async def run(self) -> None:
        """Relay forever: drain, then sleep until woken or the poll interval passes."""
        backoff = self.poll_interval
        while True:
            try:
                count = await self.run_once()
            except Exception:
                log.warning("outbox relay pass failed; retrying in %.1fs", backoff, exc_info=True)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = self.poll_interval
            if count >= self.batch_size:
                continue
            await wait_or_timeout(self._wake, self.poll_interval)
            self._wake.clear()


class _PostgresStatements:
    """The relay's statements on PostgreSQL, built once per relay: each runs as a transaction of its
    own (``execute_statement_alone``), so a pass costs three round trips (claim, publish, delete)
    instead of seven, and no per-pass SQL compilation. At a few events per pass, as on every
    low-rate hop of the money path, that overhead was most of the relay's cost."""

    def __init__(self, t: Table) -> None:
        ids = bindparam("ids", type_=ARRAY(BigInteger()))
        token = bindparam("token", type_=String())
        due = (
            select(t.c.id)
            .where(t.c.claimed_until.is_(None) | (t.c.claimed_until < bindparam("now", type_=t.c.claimed_until.type)))
            .order_by(t.c.id)
            .limit(bindparam("limit", type_=Integer()))
            .with_for_update(skip_locked=True)
        )
        self.claim: ClauseElement = (
            update(t)
            .where(t.c.id.in_(due.scalar_subquery()))
            .values(claim_token=token, claimed_until=bindparam("until", type_=t.c.claimed_until.type))
            .returning(t.c.id, t.c.event_id, t.c.routing_key, t.c.body)
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


class Notifier:
    """Sends ``NOTIFY <channel>`` on its own connection after commits, coalescing bursts: while one
    NOTIFY is in flight, and for ``min_interval`` after it, any number of further requests collapse
    into one more.

    The pause trades a few milliseconds of publish latency for batches: without it, under load every
    commit woke the relays for a pass of one or two rows (claim, publish, delete), and that per-pass
    work competed with the API for the same CPUs.
    """

    def __init__(self, url: str, channel: str, *, min_interval: float = 0.02) -> None:
        self.url = url.replace("postgresql+asyncpg://", "postgresql://", 1)
        self.channel = channel
        self.min_interval = min_interval
        self._wanted = asyncio.Event()
        # The PostgreSQL backend that sends our NOTIFYs, once connected: a listener in the same process
        # can tell its own notifications (the process already woke itself) from other processes'.
        self.server_pid: int | None = None

    def request(self) -> None:
        self._wanted.set()

    def sent(self, pid: int) -> bool:
        """Whether a notification from backend ``pid`` is one of ours."""
        return pid == self.server_pid

    async def run(self) -> None:
        import asyncpg  # local import: SQLite deployments never need it

        conn = await asyncpg.connect(self.url)
        self.server_pid = conn.get_server_pid()
        try:
            while True:
                await self._wanted.wait()
                self._wanted.clear()
                await conn.execute(f'NOTIFY "{self.channel}"')
                await asyncio.sleep(self.min_interval)
        finally:
            await conn.close()


async def listen_for_notifications(
    url: str, channel: str, callback: Callable[[], None], *, ignore: Callable[[int], bool] | None = None
) -> Callable[[], object]:
    """Subscribe to PostgreSQL NOTIFY on ``channel`` with a dedicated asyncpg connection; ``ignore``
    drops notifications by the sending backend's pid (e.g. ``Notifier.sent``: this process's own).

    Returns an async closer. Polling still runs beside it, so a lost notification only delays an event.
    """
    import asyncpg  # local import: SQLite deployments never need it

    def on_notify(_conn: object, pid: int, _channel: str, _payload: str) -> None:
        if ignore is None or not ignore(pid):
            callback()

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    await conn.add_listener(channel, on_notify)
    return conn.close
