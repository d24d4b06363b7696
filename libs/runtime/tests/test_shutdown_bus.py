"""The consumers' graceful stop on the real broker (``RabbitBus.stop_consuming``): no delivery after the
cancel, in-flight handlers finish and are acked, what was not taken stays in the queue with no delivery
spent, and a message held through an outage is handed back at once instead of waiting for the outage."""

from __future__ import annotations

import asyncio
import contextlib

import aio_pika
import pytest
from billing_runtime.bus import Message, rabbit
from billing_runtime.bus.rabbit import RabbitBus
from billing_runtime.unavailable import DependencyUnavailable

pytestmark = pytest.mark.rabbitmq


async def _delete_queues(url: str, *names: str) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        for name in names:
            with contextlib.suppress(Exception):
                await channel.queue_delete(name)


async def _take_all(url: str, queue: str) -> list[tuple[str, int]]:
    """Every message left in ``queue`` (acked: gone), with its delivery count as the broker tells it."""
    found: list[tuple[str, int]] = []
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        q = await channel.get_queue(queue, ensure=False)
        while (message := await q.get(fail=False)) is not None:
            count = (message.headers or {}).get("x-delivery-count", 0)
            found.append((str(message.message_id), int(count) if isinstance(count, int) else 0))
            await message.ack()
    return found


@pytest.fixture
async def buses(rabbit_url: str, queue_name: str):  # type: ignore[no-untyped-def]
    publisher, consumer = RabbitBus(rabbit_url, retry_delay=0.05), RabbitBus(rabbit_url, retry_delay=0.05, prefetch=4)
    await publisher.start()
    await consumer.start()
    yield publisher, consumer
    await consumer.close()
    await publisher.close()
    await _delete_queues(rabbit_url, queue_name, f"{queue_name}.dlq")


async def _until(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_stop_consuming_finishes_in_flight_handlers_and_takes_nothing_more(
    buses: tuple[RabbitBus, RabbitBus], queue_name: str, rabbit_url: str
) -> None:
    publisher, consumer = buses
    started: list[str] = []
    finished: list[str] = []
    release = asyncio.Event()

    async def handler(message: Message) -> None:
        started.append(message.message_id)
        await release.wait()
        finished.append(message.message_id)

    key = f"{queue_name}.thing.v1"
    await consumer.subscribe(queue_name, [f"{queue_name}.#"], handler)
    await publisher.publish(Message(key, b"{}", "evt_1"))
    await _until(lambda: started == ["evt_1"])

    stopping = asyncio.create_task(consumer.stop_consuming(10))
    await asyncio.sleep(0.5)
    assert not stopping.done(), "the stop must wait for the handler in flight"
    # Published after the cancel: nobody of this process takes it.
    await publisher.publish(Message(key, b"{}", "evt_2"))
    await asyncio.sleep(0.5)
    release.set()
    await asyncio.wait_for(stopping, 10)
    assert finished == ["evt_1"]
    assert started == ["evt_1"]
    await consumer.close()
    # evt_1 was acked (gone); evt_2 waits for the next process, never delivered, so no delivery spent.
    assert await _take_all(rabbit_url, queue_name) == [("evt_2", 0)]


async def test_stop_consuming_is_bounded_and_the_late_message_goes_back_to_the_queue(
    buses: tuple[RabbitBus, RabbitBus], queue_name: str, rabbit_url: str
) -> None:
    publisher, consumer = buses
    started = asyncio.Event()

    async def handler(message: Message) -> None:
        started.set()
        await asyncio.sleep(60)

    await consumer.subscribe(queue_name, [f"{queue_name}.#"], handler)
    await publisher.publish(Message(f"{queue_name}.thing.v1", b"{}", "evt_slow"))
    await asyncio.wait_for(started.wait(), 10)
    loop = asyncio.get_running_loop()
    began = loop.time()
    await consumer.stop_consuming(0.5)
    assert loop.time() - began < 5
    await consumer.close()  # cancels the handler; the broker returns its message
    left = await _take_all(rabbit_url, queue_name)
    assert [event for event, _ in left] == ["evt_slow"]


async def test_a_message_held_through_an_outage_is_handed_back_when_stopping(
    buses: tuple[RabbitBus, RabbitBus], queue_name: str, rabbit_url: str
) -> None:
    publisher, consumer = buses
    calls = 0

    async def handler(message: Message) -> None:
        nonlocal calls
        calls += 1
        raise DependencyUnavailable("the database is away")

    await consumer.subscribe(queue_name, [f"{queue_name}.#"], handler)
    await publisher.publish(Message(f"{queue_name}.thing.v1", b"{}", "evt_held"))
    await _until(lambda: bool(consumer.paused()))
    loop = asyncio.get_running_loop()
    began = loop.time()
    await consumer.stop_consuming(10)
    # Not the outage's end nor the 10 s: the hold lets go at once.
    assert loop.time() - began < 5
    await consumer.close()
    # A fresh copy at the back of its queue, no delivery spent (an outage is not poison), none dead.
    assert await _take_all(rabbit_url, queue_name) == [("evt_held", 0)]
    assert await _take_all(rabbit_url, f"{queue_name}.dlq") == []
    assert calls >= 1


@pytest.fixture
async def subscribed(rabbit_url: str, queue_name: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A started bus consuming ``queue_name``, with channel closes bounded at 0.2 s; its queues are
    deleted after (the test closes the bus)."""
    monkeypatch.setattr(rabbit, "CLOSE_BOUND", 0.2)
    bus = RabbitBus(rabbit_url, retry_delay=0.05)
    await bus.start()

    async def handler(message: Message) -> None:
        return None

    try:
        await bus.subscribe(queue_name, [f"{queue_name}.#"], handler)
        yield bus
    finally:
        await _delete_queues(rabbit_url, queue_name, f"{queue_name}.dlq")


async def test_close_is_bounded_when_a_channel_never_confirms_its_close(
    subscribed: RabbitBus, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A channel whose close is never confirmed (the broker, or the client's state after a cancelled
    # write, never answering) must not hang the process's stop: the close goes on without it.
    bus = subscribed
    [(_, channel, _)] = bus._consumers
    monkeypatch.setattr(channel, "close", lambda *args, **kwargs: asyncio.Event().wait())
    await asyncio.wait_for(bus.close(), 5)
    assert bus._connection is None and bus._consumers == []


async def test_the_status_reads_do_not_wait_on_a_channel_close_that_is_never_confirmed(
    subscribed: RabbitBus, queue_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The queue watcher reads depths on channels of their own and closes each after, also when it is
    # cancelled by a stop: a close never answered must not hold it (nor, so, the stop).
    bus = subscribed
    try:
        connection = bus._connection
        assert connection is not None
        opened = connection.channel

        async def never_closing(*args, **kwargs):  # type: ignore[no-untyped-def]
            channel = await opened(*args, **kwargs)
            monkeypatch.setattr(channel, "close", lambda *a, **k: asyncio.Event().wait())
            return channel

        monkeypatch.setattr(connection, "channel", never_closing)
        assert await asyncio.wait_for(bus.queue_depth(queue_name), 5) == 0
        stats = await asyncio.wait_for(bus.dead_letter_stats(queue_name), 5)
        assert stats is not None and stats.depth == 0
    finally:
        await asyncio.wait_for(bus.close(), 5)
