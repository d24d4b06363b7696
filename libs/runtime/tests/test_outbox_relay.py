"""The relay on real PostgreSQL: everything committed is published once, nothing uncommitted is,
concurrent relays never publish the same row, and a failing broker loses nothing."""

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest
from billing_contracts.envelope import utcnow
from billing_contracts.events import PaymentData, PaymentSnapshot
from billing_contracts.events.payments import PaymentCreatedV1
from billing_runtime import outbox as outbox_module
from billing_runtime.bus import MemoryBus, Message
from billing_runtime.db import make_sessionmaker
from billing_runtime.outbox import OutboxRelay, _Statements, outbox_table
from billing_runtime.outbox_vacuum import OutboxVacuum
from billing_runtime.prepared import InTransaction
from billing_runtime.uow import UnitOfWork
from sqlalchemy import MetaData, Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine


def _event(i: int) -> PaymentCreatedV1:
    now = utcnow()
    snap = PaymentSnapshot(
        id=f"pay_{i}",
        status="CREATED",
        amount=100,
        currency="USD",
        order_id=str(i),
        created_at=now,
        updated_at=now,
        expires_at=now,
    )
    return PaymentCreatedV1(tenant_id="ten_a", data=PaymentData(payment=snap))


async def _write(engine, schema, events, *, commit: bool = True) -> None:
    async with UnitOfWork(make_sessionmaker(engine), schema.outbox) as uow:
        for e in events:
            uow.emit(e)
        if commit:
            await uow.commit()


class RecordingBus(MemoryBus):
    def __init__(self, fail_after: int | None = None) -> None:
        super().__init__()
        self.published: list[Message] = []
        self.fail_after = fail_after

    async def publish(self, message: Message) -> None:
        if self.fail_after is not None and len(self.published) >= self.fail_after:
            raise ConnectionError("broker down")
        await asyncio.sleep(0)
        self.published.append(message)


async def _backlog(engine, schema) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(schema.outbox))).scalar_one()


class TestOutboxRelay:
    async def test_committed_events_are_published_in_order_then_deleted(self, engine, schema) -> None:
        events = [_event(i) for i in range(5)]
        await _write(engine, schema, events)
        bus = RecordingBus()
        assert await OutboxRelay(engine, schema.outbox, bus).run_once() == 5
        assert [m.message_id for m in bus.published] == [e.event_id for e in events]
        assert bus.published[0].routing_key == "payments.payment.created.v1"
        assert await _backlog(engine, schema) == 0

    async def test_rolled_back_events_never_leave(self, engine, schema) -> None:
        await _write(engine, schema, [_event(1)], commit=False)
        bus = RecordingBus()
        assert await OutboxRelay(engine, schema.outbox, bus).run_once() == 0
        assert bus.published == []

    async def test_concurrent_relays_publish_each_row_exactly_once(self, engine, schema) -> None:
        events = [_event(i) for i in range(300)]
        await _write(engine, schema, events)
        bus = RecordingBus()
        relays = [OutboxRelay(engine, schema.outbox, bus, batch_size=20) for _ in range(4)]

        async def drain(relay: OutboxRelay) -> None:
            while await relay.run_once():
                pass

        await asyncio.gather(*(drain(r) for r in relays))
        ids = [m.message_id for m in bus.published]
        assert len(ids) == 300
        assert set(ids) == {e.event_id for e in events}

    async def test_broker_failure_keeps_unpublished_rows_for_the_next_pass(self, engine, schema) -> None:
        await _write(engine, schema, [_event(i) for i in range(5)])
        bus = RecordingBus(fail_after=2)
        relay = OutboxRelay(engine, schema.outbox, bus)
        with contextlib.suppress(ConnectionError):
            await relay.run_once()
        assert await _backlog(engine, schema) == 3
        bus.fail_after = None
        assert await relay.run_once() == 3
        assert len({m.message_id for m in bus.published}) == 5

    async def test_a_relay_cancelled_mid_publish_does_not_wait_long_on_its_hand_back(
        self, engine, schema, monkeypatch
    ) -> None:
        # Cancelled by a stop while publishing, the relay hands the batch back: a database that does not
        # answer holds it RELEASE_BOUND at most, then the rows wait for their lease.
        monkeypatch.setattr(outbox_module, "RELEASE_BOUND", 0.2)
        await _write(engine, schema, [_event(1)])
        publishing = asyncio.Event()

        class SlowBus(MemoryBus):
            async def publish(self, message: Message) -> None:
                publishing.set()
                await asyncio.Event().wait()

        relay = OutboxRelay(engine, schema.outbox, SlowBus())

        async def never_answered(*args, **kwargs) -> None:
            await asyncio.Event().wait()

        monkeypatch.setattr(relay, "_settle", never_answered)
        running = asyncio.create_task(relay.run_once())
        await asyncio.wait_for(publishing.wait(), 5)
        running.cancel()
        done, _ = await asyncio.wait({running}, timeout=5)
        assert done == {running} and running.cancelled()
        assert await _backlog(engine, schema) == 1  # still there, for the next relay once its lease ends

    async def test_a_pass_takes_one_batch_whatever_the_tables_statistics_say(self, engine, schema) -> None:
        """The claim's due rows are picked once (``ARRAY(SELECT ...)``). As ``id IN (SELECT ... LIMIT n
        FOR UPDATE SKIP LOCKED)``, a plan made while the outbox was small (analysed then, grown since: a
        broker outage) ran the subquery again for every row of the outbox, each run picking rows the
        last had not: a pass claimed the whole backlog, not a batch, in time quadratic in it."""
        # As an outbox lives: rows written and published (deleted) all the time, so that ANALYZE finds
        # pages of dead rows and next to no live ones; then a backlog builds up (the broker away).
        await _write(engine, schema, [_event(i) for i in range(400)])
        bus = RecordingBus()
        assert await OutboxRelay(engine, schema.outbox, bus, batch_size=400).run_once() == 400
        async with engine.begin() as conn:
            await conn.exec_driver_sql(f"ANALYZE {schema.outbox.name}")
        await _write(engine, schema, [_event(i) for i in range(400, 1200)])
        bus = RecordingBus()
        relay = OutboxRelay(engine, schema.outbox, bus, batch_size=50)
        assert await relay.run_once() == 50
        assert len(bus.published) == 50
        assert await _backlog(engine, schema) == 750


# The relay's claim reads the rows due, not the heap of rows published before them, whatever
# PostgreSQL's statistics say. An outbox's rows are written and deleted all the time, and vacuum comes
# by once a minute at most: at a few hundred events a second its heap holds tens of thousands of deleted
# rows between two vacuums. With statistics that said next to no row was due (never taken, or taken
# while the outbox was empty, a queue's usual state), PostgreSQL planned the claim's ``LIMIT n`` as a
# scan of the whole heap and a sort: every pass read every page (the Stripe webhook bench: 1,444 buffers
# and 1.3 ms per claim). Walked in key order (``opaque_limit``), a pass steps over the index entries of
# deleted rows and marks them dead, so the next pass skips them unread; only pages still being written
# (new rows, the claimed rows' new entries) keep theirs, until the relay's vacuum (below). Counted in PostgreSQL's own
# statistics of the table's heap, per transaction.
PUBLISHED = 12_000  # deleted, not yet vacuumed
DUE = 30
BATCH = 10
PASSES = 8  # past PostgreSQL's five custom plans


@pytest.fixture
async def own_outbox(engine: AsyncEngine) -> AsyncIterator[Table]:
    """An outbox of the test's own, in a schema of its own: never analysed (no statistics left by
    another test), and autovacuum off (no visit of its own between the test's steps)."""
    name = f"heap_{secrets.token_hex(4)}"
    async with engine.begin() as conn:
        await conn.exec_driver_sql(f"CREATE SCHEMA {name}")
        await conn.exec_driver_sql(
            f"CREATE TABLE {name}.outbox (LIKE public.outbox INCLUDING ALL) WITH (autovacuum_enabled = off)"
        )
    yield outbox_table(MetaData(schema=name))
    async with engine.begin() as conn:
        await conn.exec_driver_sql(f"DROP SCHEMA {name} CASCADE")


@pytest.mark.parametrize("analysed", ["never", "while_empty", "vacuumed_while_empty", "with_a_backlog"])
async def test_a_claim_reads_the_rows_due_not_those_published_before_them(
    engine: AsyncEngine, own_outbox: Table, analysed: str
) -> None:
    table = own_outbox.fullname
    conn = await _connect(engine)
    try:

        async def publish(first: int) -> None:
            await _insert_events(conn, table, first, PUBLISHED)
            if analysed == "with_a_backlog":
                await conn.execute(f"ANALYZE {table}")
            # (Its own vacuum off: the heap as autovacuum leaves it between two of its visits.)
            relay = OutboxRelay(engine, own_outbox, RecordingBus(), batch_size=PUBLISHED, vacuum_every=0)
            assert await relay.run_once() == PUBLISHED

        await publish(0)
        if analysed == "while_empty":
            await conn.execute(f"ANALYZE {table}")
        if analysed == "vacuumed_while_empty":
            await conn.execute(f"VACUUM ANALYZE {table}")
            await publish(PUBLISHED)
        await _insert_events(conn, table, 2 * PUBLISHED, DUE)
        heap_pages = await _heap_pages(conn, table)

        claim = _Statements(own_outbox).claim
        statements = InTransaction(conn, engine.dialect)
        fetched = f"SELECT pg_stat_get_xact_blocks_fetched('{table}'::regclass)"
        reads = []
        for _ in range(PASSES):
            attempt = conn.transaction()  # (the counts are the transaction's own)
            await attempt.start()
            before = await conn.fetchval(fetched)
            rows = await statements.rows(claim, {"now": utcnow(), "limit": BATCH, "token": "t" * 32, "until": utcnow()})
            reads.append(await conn.fetchval(fetched) - before)
            assert len(rows) == BATCH
            await attempt.rollback()
    finally:
        await conn.close()
    # The first passes visit the deleted rows (to learn they are gone: one, or two when a deletion was
    # still too recent for every transaction to be sure of it); the others do not.
    assert heap_pages > 2500
    assert max(reads[2:]) < heap_pages / 4, f"heap pages read per claim: {reads} (the heap: {heap_pages})"


async def _connect(engine: AsyncEngine) -> asyncpg.Connection:
    """A connection of the test's own to the test database, outside the engine's pool."""
    return await asyncpg.connect(engine.url.set(drivername="postgresql").render_as_string(hide_password=False))


async def _insert_events(conn: asyncpg.Connection, table: str, first: int, count: int) -> None:
    """``count`` outbox rows at once, each an event of a realistic size."""
    await conn.execute(  # (``table``: the test's own, never input)
        f"INSERT INTO {table} (event_id, routing_key, body, created_at) SELECT 'evt_' || g,"  # noqa: S608
        " 'payments.payment.created.v1', $1, now() FROM generate_series($2::int, $3::int) g",
        _event(0).model_dump_json(),
        first,
        first + count - 1,
    )


async def _heap_pages(conn: asyncpg.Connection, table: str) -> int:
    return await conn.fetchval(f"SELECT pg_relation_size('{table}') / current_setting('block_size')::int")


async def test_the_relay_vacuums_its_outbox_every_so_many_rows_it_deleted(
    engine: AsyncEngine, own_outbox: Table
) -> None:
    """Autovacuum comes once a minute at most; in between, a busy outbox's heap fills with the rows
    already published, and every claim steps over them (``billing_runtime.outbox_vacuum``). The same
    8,000 events written and published 500 at a time, with the relay's vacuum and without it."""
    table = own_outbox.fullname
    conn = await _connect(engine)

    async def churn(vacuum_every: int) -> int:
        await conn.execute(f"TRUNCATE {table}")
        relay = OutboxRelay(engine, own_outbox, RecordingBus(), batch_size=500, vacuum_every=vacuum_every)
        for first in range(0, 8_000, 500):
            await _insert_events(conn, table, first, 500)
            assert await relay.run_once() == 500
        return await _heap_pages(conn, table)

    try:
        unvacuumed = await churn(0)
        vacuumed = await churn(1_000)
    finally:
        await conn.close()
    assert vacuumed * 3 < unvacuumed, f"heap pages: {vacuumed} vacuumed by the relay, {unvacuumed} not"


async def test_a_vacuum_past_its_bound_is_cancelled_and_the_relay_goes_on(
    engine: AsyncEngine, own_outbox: Table, caplog: pytest.LogCaptureFixture
) -> None:
    """A vacuum that outlasts its bound (a backlog's heap, a migration's lock queued behind it) is
    cancelled on the server and logged; the connection goes back to the pool fit for the next caller."""
    table = own_outbox.fullname
    conn = await _connect(engine)
    try:
        # Work for a vacuum of tens of milliseconds at least: 200,000 deleted rows.
        await conn.execute(
            f"INSERT INTO {table} (event_id, routing_key, body, created_at)"  # noqa: S608 (the test's own table)
            " SELECT 'evt_' || g, 'k', 'b', now() FROM generate_series(1, 200000) g"
        )
        await conn.execute(f"DELETE FROM {table}")  # noqa: S608
        vacuum = OutboxVacuum(engine, own_outbox, every=1, bound=0.002)
        with caplog.at_level(logging.WARNING, logger="billing_runtime.outbox_vacuum"):
            await vacuum.deleted(1)
        assert any("VACUUM" in r.getMessage() and r.exc_info for r in caplog.records), caplog.text
        # Cancelled on the server, not left running there.
        running = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'VACUUM%' AND state = 'active'"
        async with asyncio.timeout(5):
            while await conn.fetchval(running):
                await asyncio.sleep(0.01)
        await _insert_events(conn, table, 0, 3)
    finally:
        await conn.close()
    async with engine.connect() as pooled:
        assert (await pooled.exec_driver_sql("SELECT 1")).scalar_one() == 1
    assert await OutboxRelay(engine, own_outbox, RecordingBus(), vacuum_every=1).run_once() == 3
