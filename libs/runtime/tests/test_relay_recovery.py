"""Prompt recovery of the relay on real PostgreSQL and RabbitMQ: its error backoff is short and a
wake-up ends it, a batch it could not publish is handed back at once (not left leased), and its LISTEN
connection and the Notifier's are opened again when they drop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from billing_contracts.envelope import utcnow
from billing_runtime.bus import MemoryBus, Message
from billing_runtime.bus.rabbit import RabbitBus
from billing_runtime.db import create_engine
from billing_runtime.notifications import NotificationListener, Notifier, listen_for_notifications
from billing_runtime.outbox import OutboxRelay
from billing_runtime.testing import PG_DSN
from billing_runtime.testing_faults import close_vhost_connections, own_database
from sqlalchemy import func, select


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def _rows(prefix: str, n: int, key: str = "test.e.v1") -> list[dict[str, object]]:
    return [
        {"event_id": f"{prefix}_{i:03d}", "routing_key": key, "body": "{}", "created_at": utcnow()} for i in range(n)
    ]


class FlakyBus(MemoryBus):
    """Fails every publish while ``down``; ``whole`` makes publish_many itself raise (the broker's
    connection gone before anything was sent)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = True
        self.whole = False
        self.published: list[str] = []

    async def publish_many(self, messages: list[Message]) -> list[BaseException | None]:
        if self.down and self.whole:
            raise ConnectionError("channel closed")
        if self.down:
            return [ConnectionError("broker down") for _ in messages]
        self.published.extend(m.message_id for m in messages)
        return [None for _ in messages]


@contextlib.asynccontextmanager
async def running(coro: Awaitable[None]):  # type: ignore[no-untyped-def]
    task = asyncio.ensure_future(coro)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class TestRelayBackoff:
    async def test_after_failures_a_wake_up_publishes_at_once(self, engine, schema) -> None:
        async with engine.begin() as conn:
            await conn.execute(schema.outbox.insert(), _rows("evt", 3))
        bus = FlakyBus()
        relay = OutboxRelay(engine, schema.outbox, bus, poll_interval=30)
        async with running(relay.run()):
            await asyncio.sleep(3)  # failing passes: the old backoff reached 4 s and ignored wake-ups
            bus.down = False
            relay.wake()
            woken = asyncio.get_running_loop().time()

            async def published() -> bool:
                return len(bus.published) == 3

            await wait_for(published)
            assert asyncio.get_running_loop().time() - woken < 0.5

    async def test_a_publish_that_cannot_start_hands_the_batch_back_at_once(self, engine, schema) -> None:
        async with engine.begin() as conn:
            await conn.execute(schema.outbox.insert(), _rows("evt", 4))
        bus = FlakyBus()
        bus.whole = True
        with pytest.raises(ConnectionError):
            await OutboxRelay(engine, schema.outbox, bus).run_once()
        async with engine.connect() as conn:
            leased = await conn.scalar(
                select(func.count()).select_from(schema.outbox).where(schema.outbox.c.claimed_until.is_not(None))
            )
        assert leased == 0  # was: all four leased for 30 s, unpublishable by any relay
        bus.down = False
        assert await OutboxRelay(engine, schema.outbox, bus).run_once() == 4


class TestRelayOutages:
    async def test_events_flow_within_two_seconds_of_the_database_being_back(self, schema) -> None:
        async with own_database() as db:
            engine = create_engine(db.url, pool_size=2)
            try:
                async with engine.begin() as conn:
                    await conn.run_sync(schema.metadata.create_all)
                bus = FlakyBus()
                bus.down = False
                relay = OutboxRelay(engine, schema.outbox, bus, poll_interval=30)
                async with running(relay.run()):
                    await db.refuse()
                    relay.wake()
                    await asyncio.sleep(4)  # the old backoff: 1 + 2 + 4 s, the last sleep past the outage
                    await db.accept()
                    back = asyncio.get_running_loop().time()
                    async with engine.begin() as conn:
                        await conn.execute(schema.outbox.insert(), _rows("evt", 5))

                    async def published() -> bool:
                        return len(bus.published) == 5

                    await wait_for(published)
                    assert asyncio.get_running_loop().time() - back < 2.0
            finally:
                await engine.dispose()

    @pytest.mark.rabbitmq
    async def test_a_broker_connection_lost_mid_flow_delays_events_by_seconds_not_a_lease(
        self, engine, schema, rabbit_url, queue_name
    ) -> None:
        publisher, consumer = RabbitBus(rabbit_url), RabbitBus(rabbit_url)
        await publisher.start()
        await consumer.start()
        got: set[str] = set()

        async def handler(message: Message) -> None:
            got.add(message.message_id)

        try:
            await consumer.subscribe(queue_name, [f"{queue_name}.#"], handler)
            relay = OutboxRelay(engine, schema.outbox, publisher, poll_interval=0.1)
            async with running(relay.run()):
                rows = _rows("evt", 20, key=f"{queue_name}.e.v1")
                # Told by the connection itself, not by polling its channel's state: under load,
                # rabbitmqctl can return after the robust connection has already reconnected (1 s),
                # and a poll would then wait for a closed channel that never comes.
                lost = asyncio.Event()
                assert publisher._connection is not None
                publisher._connection.close_callbacks.add(lambda *_: lost.set())
                await asyncio.to_thread(close_vhost_connections, rabbit_url)
                await asyncio.wait_for(lost.wait(), timeout=20)
                started = asyncio.get_running_loop().time()
                async with engine.begin() as conn:
                    await conn.execute(schema.outbox.insert(), rows)
                relay.wake()

                async def all_arrived() -> bool:
                    return len(got) == len(rows)

                await wait_for(all_arrived, timeout=25)
                # Reconnect (1 s) plus a retry: far below the 30 s lease a stranded batch waited.
                assert asyncio.get_running_loop().time() - started < 10
        finally:
            await consumer.close()
            await publisher.close()


class TestNotificationsReconnect:
    async def _terminate(self, pid: int) -> None:
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute("SELECT pg_terminate_backend($1)", pid)
        finally:
            await conn.close()

    async def test_the_listen_connection_is_opened_again_after_it_drops(self) -> None:
        heard = asyncio.Event()
        channel = f"wake_{id(heard)}"
        listener = NotificationListener(PG_DSN, channel, heard.set, keepalive=0.5)
        await listener.connect()
        notifier = Notifier(PG_DSN, channel)
        async with running(listener.run()), running(notifier.run()):
            await self._terminate(listener._conn.get_server_pid())

            async def reconnected() -> bool:
                return listener.connections == 2

            await wait_for(reconnected, timeout=10)
            heard.clear()  # the reconnection itself wakes the relay once
            while notifier.server_pid is None:
                await asyncio.sleep(0.01)
            notifier.request()
            async with asyncio.timeout(5):
                await heard.wait()
        await listener.close()

    async def test_the_notifier_reconnects_and_sends_what_was_asked_meanwhile(self) -> None:
        heard = asyncio.Event()
        channel = f"wake_{id(heard)}"
        listener = NotificationListener(PG_DSN, channel, heard.set)
        await listener.connect()
        notifier = Notifier(PG_DSN, channel)
        async with running(listener.run()), running(notifier.run()):
            while notifier.server_pid is None:
                await asyncio.sleep(0.01)
            first = notifier.server_pid
            await self._terminate(first)
            await asyncio.sleep(0.2)
            notifier.request()
            async with asyncio.timeout(5):
                await heard.wait()
            assert notifier.server_pid != first
        await listener.close()

    async def test_a_listener_started_while_the_database_is_down_hears_once_it_is_back(self) -> None:
        heard = asyncio.Event()
        async with own_database() as db:
            await db.refuse()
            close = await listen_for_notifications(db.url, "wake_late", heard.set)  # comes up regardless
            try:
                await asyncio.sleep(0.3)
                await db.accept()
                notifier = Notifier(db.url, "wake_late")
                async with running(notifier.run()):
                    while notifier.server_pid is None:
                        await asyncio.sleep(0.01)
                    await asyncio.sleep(1.5)  # the listener reconnects within its 1 s backoff bound
                    heard.clear()
                    notifier.request()
                    async with asyncio.timeout(5):
                        await heard.wait()
            finally:
                await close()
