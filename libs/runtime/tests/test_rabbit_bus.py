"""The RabbitMQ bus against the real broker: delivery, dead-lettering, and a broker restart in the
middle of publishing with nothing lost and nothing applied twice."""

import asyncio
import contextlib
import subprocess

import aio_pika
import aiormq
import pytest
from billing_runtime.bus import Message, rabbit
from billing_runtime.bus.rabbit import RabbitBus
from billing_runtime.db import make_sessionmaker
from billing_runtime.inbox import record_once
from billing_runtime.outbox import OutboxRelay
from billing_runtime.uow import UnitOfWork
from sqlalchemy import func, select

pytestmark = pytest.mark.rabbitmq


async def _delete_queues(url: str, *names: str) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        for name in names:
            with contextlib.suppress(Exception):
                await channel.queue_delete(name)


@pytest.fixture
async def buses(rabbit_url, queue_name):
    publisher, consumer = RabbitBus(rabbit_url, retry_delay=0.05), RabbitBus(rabbit_url, retry_delay=0.05)
    await publisher.start()
    await consumer.start()
    yield publisher, consumer
    await consumer.close()
    await publisher.close()
    await _delete_queues(rabbit_url, queue_name, f"{queue_name}.dlq")


async def _wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def _ready(url: str, queue: str) -> int:
    """Messages ready in ``queue`` once the broker has taken back what a closed consumer held."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        count = -1
        for _ in range(40):  # the return of a closed channel's unacked messages is asynchronous
            declared = await channel.declare_queue(queue, passive=True)
            count = int(declared.declaration_result.message_count or 0)
            if count:
                await asyncio.sleep(0.3)  # settled: nothing more comes back after the first returns
                declared = await channel.declare_queue(queue, passive=True)
                return int(declared.declaration_result.message_count or 0)
            await asyncio.sleep(0.05)
        return count


async def _slow_one_first(publisher: RabbitBus, consumer: RabbitBus, queue_name: str, fast: int) -> asyncio.Event:
    """A slow message and ``fast`` others behind it; returns once the fast ones' handlers are done, with
    the event that lets the slow one finish."""
    release = asyncio.Event()
    done: list[str] = []

    async def handler(message: Message) -> None:
        if message.message_id == "evt_slow":
            await release.wait()
        done.append(message.message_id)

    await consumer.subscribe(queue_name, [f"{queue_name}.#"], handler)
    ids = ["evt_slow"] + [f"evt_{i}" for i in range(fast)]
    await publisher.publish_many([Message(f"{queue_name}.thing.v1", b"{}", i) for i in ids])

    async def fast_ones_done() -> bool:
        return len(done) == fast

    await _wait_for(fast_ones_done)
    return release


class TestRabbitBus:
    async def test_published_event_reaches_the_bound_queue_once(self, buses, queue_name) -> None:
        publisher, consumer = buses
        got: list[Message] = []

        async def handler(message: Message) -> None:
            got.append(message)

        await consumer.subscribe(queue_name, [f"{queue_name}.#"], handler)
        await publisher.publish(Message(f"{queue_name}.thing.v1", b'{"x":1}', "evt_1"))
        await publisher.publish(Message("elsewhere.thing.v1", b"{}", "evt_2"))

        async def arrived() -> bool:
            return len(got) >= 1

        await _wait_for(arrived)
        await asyncio.sleep(0.3)
        assert [(m.message_id, m.body) for m in got] == [("evt_1", b'{"x":1}')]

    async def test_not_ready_once_the_broker_cancels_the_consumer(self, buses, queue_name, rabbit_url) -> None:
        _, consumer = buses

        async def handler(message: Message) -> None:
            return None

        await consumer.subscribe(queue_name, [f"{queue_name}.#"], handler)
        await consumer.check()
        # Deleting the queue makes the broker cancel its consumer; the connection stays up.
        await _delete_queues(rabbit_url, queue_name)

        async def not_ready() -> bool:
            try:
                await consumer.check()
            except ConnectionError:
                return True
            return False

        await _wait_for(not_ready)
        with pytest.raises(ConnectionError, match=f"not consuming from {queue_name}"):
            await consumer.check()

    async def test_an_event_nobody_subscribes_to_is_dropped_by_the_broker_not_sent_back(self, buses) -> None:
        publisher, _ = buses
        returned: list[object] = []
        await publisher.publish(Message("warmup.thing.v1", b"{}", "evt_0"))  # opens the publishing channel
        publisher._publish_channel.return_callbacks.add(lambda _channel, message: returned.append(message))

        # Confirmed: with mandatory publishing the broker would have sent the message back before this.
        assert await publisher.publish_many([Message("nobody.listens.v1", b'{"x":1}', "evt_1")]) == [None]
        await publisher.publish(Message("nobody.listens.v1", b"{}", "evt_2"))

        assert returned == []

    async def test_a_batch_reaches_the_queue_in_publish_order(self, buses, queue_name) -> None:
        publisher, consumer = buses
        got: list[str] = []

        async def handler(message: Message) -> None:
            got.append(message.message_id)

        await consumer.subscribe(queue_name, [f"{queue_name}.#"], handler)
        ids = [f"evt_{i:03d}" for i in range(200)]
        results = await publisher.publish_many([Message(f"{queue_name}.thing.v1", b"{}", i) for i in ids])
        assert results == [None] * len(ids)

        async def arrived() -> bool:
            return len(got) >= len(ids)

        await _wait_for(arrived)
        assert got == ids

    async def test_messages_finished_behind_a_slow_one_are_acked_within_the_linger(
        self, buses, queue_name, rabbit_url
    ) -> None:
        publisher, consumer = buses
        release = await _slow_one_first(publisher, consumer, queue_name, 9)
        await asyncio.sleep(consumer.ack_linger * 6)
        # The consumer dies with the slow one unfinished: only that one goes back to the queue, the nine
        # behind it were acked on their own (a run could not have named them without settling it too).
        assert consumer._connection is not None
        await consumer._connection.close()
        consumer._connection = None
        release.set()
        assert await _ready(rabbit_url, queue_name) == 1

    async def test_a_stop_acks_what_finished_before_the_channel_closes(self, rabbit_url, queue_name) -> None:
        publisher, consumer = RabbitBus(rabbit_url), RabbitBus(rabbit_url, ack_linger=60)
        await publisher.start()
        await consumer.start()
        try:
            release = await _slow_one_first(publisher, consumer, queue_name, 19)
            # Finished behind a running one and the linger far off: only the stop can ack them.
            await consumer.stop_consuming(within=0.1)
            await consumer.close()
            release.set()
            assert await _ready(rabbit_url, queue_name) == 1
        finally:
            await consumer.close()
            await publisher.close()
            await _delete_queues(rabbit_url, queue_name, f"{queue_name}.dlq")

    async def test_a_stop_whose_acks_cannot_go_out_ends_within_its_bound(
        self, rabbit_url, queue_name, monkeypatch
    ) -> None:
        # The connection's writer takes no frame any more (what hung a full test run once, at a worker's
        # stop, before each wait was bounded): the stop and the close still end, and what was not acked
        # goes back to the queue, to be deduplicated by its consumer's inbox.
        monkeypatch.setattr(rabbit, "ACK_FLUSH_BOUND", 0.3)
        publisher, consumer = RabbitBus(rabbit_url), RabbitBus(rabbit_url, ack_linger=60)
        await publisher.start()
        await consumer.start()
        done: list[str] = []

        async def handler(message: Message) -> None:
            done.append(message.message_id)

        try:
            await consumer.subscribe(queue_name, [f"{queue_name}.#"], handler)

            async def stalled(*args: object, **kwargs: object) -> None:
                await asyncio.Event().wait()

            monkeypatch.setattr(aiormq.Channel, "basic_ack", stalled)
            ids = [f"evt_{i}" for i in range(5)]
            await publisher.publish_many([Message(f"{queue_name}.thing.v1", b"{}", i) for i in ids])

            async def all_done() -> bool:
                return len(done) == 5

            await _wait_for(all_done)
            await asyncio.wait_for(consumer.stop_consuming(within=0.1), timeout=5)
            await asyncio.wait_for(consumer.close(), timeout=5)
        finally:
            await consumer.close()
            await publisher.close()
        assert await _ready(rabbit_url, queue_name) == 5
        await _delete_queues(rabbit_url, queue_name, f"{queue_name}.dlq")

    async def test_failing_handler_is_retried_then_dead_lettered(self, buses, queue_name, rabbit_url) -> None:
        publisher, consumer = buses
        attempts: list[str] = []

        async def handler(message: Message) -> None:
            attempts.append(message.message_id)
            raise RuntimeError("poison")

        await consumer.subscribe(queue_name, [f"{queue_name}.#"], handler)
        await publisher.publish(Message(f"{queue_name}.poison.v1", b"{}", "evt_poison"))
        connection = await aio_pika.connect(rabbit_url)
        async with connection:
            channel = await connection.channel()

            async def dead_lettered() -> bool:
                queue = await channel.declare_queue(f"{queue_name}.dlq", passive=True)
                return queue.declaration_result.message_count == 1

            await _wait_for(dead_lettered)
        assert len(attempts) == consumer.max_deliveries + 1 or len(attempts) == consumer.max_deliveries


@pytest.mark.slow
class TestBrokerRestart:
    async def test_restart_mid_publishing_loses_nothing_and_applies_nothing_twice(
        self, engine, schema, buses, queue_name
    ) -> None:
        publisher, consumer = buses
        sessionmaker = make_sessionmaker(engine)

        async def apply(message: Message) -> None:
            async with UnitOfWork(sessionmaker, schema.outbox) as uow:
                if await record_once(uow.session, schema.inbox, "test", message.message_id):
                    await uow.session.execute(schema.applied.insert().values(event_id=message.message_id))
                await uow.commit()

        await consumer.subscribe(queue_name, [f"{queue_name}.#"], apply)
        total = 300
        rows = [
            {"event_id": f"evt_{i:04d}", "routing_key": f"{queue_name}.e.v1", "body": "{}", "created_at": _now()}
            for i in range(total)
        ]
        async with engine.begin() as conn:
            await conn.execute(schema.outbox.insert(), rows)
        relay = OutboxRelay(engine, schema.outbox, publisher, batch_size=10, poll_interval=0.1)
        relay_task = asyncio.create_task(relay.run())

        async def applied() -> int:
            async with engine.connect() as conn:
                return (await conn.execute(select(func.count()).select_from(schema.applied))).scalar_one()

        async def some_applied() -> bool:
            return await applied() >= 30

        late = [
            {"event_id": f"evt_late_{i:02d}", "routing_key": f"{queue_name}.e.v1", "body": "{}", "created_at": _now()}
            for i in range(20)
        ]

        async def a_late_one_applied() -> bool:
            async with engine.connect() as conn:
                query = (
                    select(func.count()).select_from(schema.applied).where(schema.applied.c.event_id.like("evt_late_%"))
                )
                return bool((await conn.execute(query)).scalar_one())

        try:
            await _wait_for(some_applied)
            await asyncio.to_thread(subprocess.run, ["rabbitmqctl", "stop_app"], check=True, capture_output=True)
            # Events written while the broker is away: how soon after it is back they flow is the
            # relay's and the consumer's recovery (issue 9: within 2 s; asserted under 5 s, the outage
            # tests' bound for a loaded 2-core machine, which still catches a backoff that oversleeps).
            async with engine.begin() as conn:
                await conn.execute(schema.outbox.insert(), late)
            await asyncio.sleep(1)
            await asyncio.to_thread(subprocess.run, ["rabbitmqctl", "start_app"], check=True, capture_output=True)
            await asyncio.to_thread(subprocess.run, ["rabbitmqctl", "await_startup"], check=True, capture_output=True)
            back = asyncio.get_running_loop().time()
            await _wait_for(a_late_one_applied, timeout=30)
            recovery = asyncio.get_running_loop().time() - back
            print(f"\nbroker back: the first event written while it was away applied {recovery:.2f} s later")
            assert recovery < 5.0, recovery

            async def all_applied_and_relayed() -> bool:
                # Every event applied, and the relay done with each row: a batch that was delivered but
                # whose publisher confirm was lost in the restart stays in the outbox until the relay
                # publishes it again (the inbox absorbs the copy), a moment after the last is applied.
                if await applied() < total + len(late):
                    return False
                async with engine.connect() as conn:
                    return (await conn.execute(select(func.count()).select_from(schema.outbox))).scalar_one() == 0

            await _wait_for(all_applied_and_relayed, timeout=90)
        finally:
            relay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay_task
        async with engine.connect() as conn:
            ids = (await conn.execute(select(schema.applied.c.event_id))).scalars().all()
            left = (await conn.execute(select(func.count()).select_from(schema.outbox))).scalar_one()
        assert sorted(ids) == sorted(r["event_id"] for r in rows + late)
        assert left == 0


def _now():
    from billing_contracts.envelope import utcnow

    return utcnow()
