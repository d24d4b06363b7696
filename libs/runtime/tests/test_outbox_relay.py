"""The relay on real PostgreSQL: everything committed is published once, nothing uncommitted is,
concurrent relays never publish the same row, and a failing broker loses nothing."""

import asyncio
import contextlib

from billing_contracts.envelope import utcnow
from billing_contracts.events import PaymentData, PaymentSnapshot
from billing_contracts.events.payments import PaymentCreatedV1
from billing_runtime import outbox as outbox_module
from billing_runtime.bus import MemoryBus, Message
from billing_runtime.db import make_sessionmaker
from billing_runtime.outbox import OutboxRelay
from billing_runtime.uow import UnitOfWork
from sqlalchemy import func, select


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
