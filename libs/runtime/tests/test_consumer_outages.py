"""Outage or poison, on the real broker and a real database of the test's own: a consumer whose database
refuses connections holds its messages (readiness failing) without spending their delivery count, and
resumes within the backoff bound once the database is back; only a message that fails on a healthy
system is dead-lettered, by the bus itself, with the reason, logged with the event id."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable

import aio_pika
import pytest
from aiohttp import web
from billing_runtime.bus import Message
from billing_runtime.bus.dead_letters import list_dead_letters, read_dead_letters, replay_dead_letters
from billing_runtime.bus.rabbit import RabbitBus
from billing_runtime.db import create_engine
from billing_runtime.errors import ProblemError
from billing_runtime.metrics import Metrics
from billing_runtime.plumbing import Plumbing
from billing_runtime.running import dead_letters_command
from billing_runtime.testing_faults import own_database
from billing_runtime.unavailable import DependencyUnavailable, is_outage
from sqlalchemy import text

pytestmark = pytest.mark.rabbitmq


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def _delete_queues(url: str, *names: str) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        for name in names:
            with contextlib.suppress(Exception):
                await channel.queue_delete(name)


@pytest.fixture
async def buses(rabbit_url, queue_name):
    # Two deliveries at most: on the old consumer an outage of a second dead-lettered every message.
    publisher = RabbitBus(rabbit_url, retry_delay=0.05, max_deliveries=2)
    consumer = RabbitBus(rabbit_url, retry_delay=0.05, max_deliveries=2)
    await publisher.start()
    await consumer.start()
    yield publisher, consumer
    await consumer.close()
    await publisher.close()
    await _delete_queues(rabbit_url, queue_name, f"{queue_name}.dlq", f"{queue_name}.other", f"{queue_name}.other.dlq")


async def _dlq_depth(url: str, queue: str) -> int:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        dlq = await channel.declare_queue(f"{queue}.dlq", passive=True)
        return int(dlq.declaration_result.message_count or 0)


class TestIsOutage:
    def test_database_down_a_dependency_unavailable_or_a_503_is_an_outage(self) -> None:
        assert is_outage(ConnectionRefusedError())
        assert is_outage(DependencyUnavailable("providers-svc down"))
        assert is_outage(ProblemError(503, "provider_unavailable"))
        wrapped = RuntimeError("handler")
        wrapped.__cause__ = ProblemError(502, "bad_gateway")
        assert is_outage(wrapped)

    def test_a_bug_or_a_rejection_is_not(self) -> None:
        assert not is_outage(RuntimeError("poison"))
        assert not is_outage(ProblemError(409, "conflict"))
        assert not is_outage(ValueError("bad event"))
        during = ValueError("raised while handling an outage")
        during.__context__ = ConnectionRefusedError()
        assert not is_outage(during)


class TestDatabaseOutage:
    async def test_an_outage_holds_the_messages_and_spends_no_delivery(self, buses, queue_name, rabbit_url) -> None:
        publisher, consumer = buses
        async with own_database("CREATE TABLE applied (event_id text PRIMARY KEY, deliveries int)") as db:
            engine = create_engine(db.url, pool_size=2)
            deliveries: list[str] = []

            async def apply(message: Message) -> None:
                deliveries.append(message.headers.get("x-delivery-count", "0"))
                async with engine.begin() as conn:
                    await conn.execute(
                        text("INSERT INTO applied VALUES (:id, :n) ON CONFLICT DO NOTHING"),
                        {"id": message.message_id, "n": int(message.headers.get("x-delivery-count", "0"))},
                    )

            async def applied() -> list[tuple[str, int]]:
                async with engine.connect() as conn:
                    rows = await conn.execute(text("SELECT event_id, deliveries FROM applied ORDER BY event_id"))
                    return [tuple(r) for r in rows]  # type: ignore[misc]

            try:
                await consumer.subscribe(queue_name, [f"{queue_name}.#"], apply)
                await db.refuse()
                ids = [f"evt_{i}" for i in range(5)]
                for event_id in ids:
                    await publisher.publish(Message(f"{queue_name}.thing.v1", b"{}", event_id))

                async def paused() -> bool:
                    return queue_name in consumer.paused()

                await wait_for(paused)
                with pytest.raises(ConnectionError, match="paused by an outage"):
                    await consumer.check()
                await asyncio.sleep(3)  # the old consumer dead-lettered all five within a second
                assert await _dlq_depth(rabbit_url, queue_name) == 0

                await db.accept()
                back = asyncio.get_running_loop().time()

                async def all_applied() -> bool:
                    try:
                        return len(await applied()) == len(ids)
                    except Exception:
                        return False

                await wait_for(all_applied)
                # Resumed within the bound of its backoff (1 s) plus a commit: within 2 s of recovery.
                assert asyncio.get_running_loop().time() - back < 2.0
                # Held, never returned: every message was applied on its first delivery.
                assert await applied() == [(i, 0) for i in ids]
                assert await _dlq_depth(rabbit_url, queue_name) == 0
                await consumer.check()
                assert consumer.paused() == {}
            finally:
                await engine.dispose()

    async def test_a_hold_longer_than_the_limit_hands_a_fresh_copy_back(self, rabbit_url, queue_name) -> None:
        """Before the broker's consumer timeout would return it (spending a delivery), a message held
        through an outage is republished to its own queue and acknowledged."""
        publisher = RabbitBus(rabbit_url, max_deliveries=1)
        consumer = RabbitBus(rabbit_url, max_deliveries=1, hold_limit=0.5)
        await publisher.start()
        await consumer.start()
        down = [True]
        seen: list[tuple[str, str, str]] = []

        async def handler(message: Message) -> None:
            seen.append((message.message_id, message.routing_key, message.headers.get("x-delivery-count", "0")))
            if down[0]:
                raise DependencyUnavailable("providers-svc down")

        try:
            await consumer.subscribe(queue_name, [f"{queue_name}.#"], handler)
            await publisher.publish(Message(f"{queue_name}.thing.v1", b"{}", "evt_held"))
            await asyncio.sleep(2)  # four hold limits: handed back about four times
            down[0] = False

            async def handled() -> bool:
                return bool(seen) and seen[-1][2] == "0" and not down[0] and len(seen) > 3

            await wait_for(handled)
            await asyncio.sleep(0.3)
            assert {s[0] for s in seen} == {"evt_held"}
            assert {s[1] for s in seen} == {f"{queue_name}.thing.v1"}  # the event's key survives the copy
            assert {s[2] for s in seen} == {"0"}  # never returned: no delivery spent
            assert await _dlq_depth(rabbit_url, queue_name) == 0
        finally:
            await consumer.close()
            await publisher.close()
            await _delete_queues(rabbit_url, queue_name, f"{queue_name}.dlq")


class TestPoison:
    async def test_poison_is_dead_lettered_with_its_reason_logged_listed_and_replayed_to_its_queue_only(
        self, buses, queue_name, rabbit_url, caplog
    ) -> None:
        publisher, consumer = buses
        broken = [True]
        handled: list[str] = []
        other: list[str] = []

        async def handler(message: Message) -> None:
            if broken[0]:
                raise RuntimeError("cannot apply this event")
            handled.append(message.message_id)

        async def other_handler(message: Message) -> None:
            other.append(message.message_id)

        await consumer.subscribe(queue_name, [f"{queue_name}.#"], handler)
        await consumer.subscribe(f"{queue_name}.other", [f"{queue_name}.#"], other_handler)
        with caplog.at_level(logging.ERROR, logger="billing_runtime.bus.rabbit"):
            await publisher.publish(Message(f"{queue_name}.poison.v1", b'{"x":1}', "evt_poison"))

            async def dead() -> bool:
                return await _dlq_depth(rabbit_url, queue_name) == 1

            await wait_for(dead)
        assert any("evt_poison" in r.getMessage() and "dead-lettering" in r.getMessage() for r in caplog.records)
        assert other == ["evt_poison"]

        letters = await list_dead_letters(rabbit_url, [queue_name])
        assert [(d.event_id, d.routing_key, d.queue, d.deliveries) for d in letters] == [
            ("evt_poison", f"{queue_name}.poison.v1", queue_name, 2)
        ]
        assert letters[0].reason == "RuntimeError: cannot apply this event"
        assert letters[0].dead_at is not None
        assert await _dlq_depth(rabbit_url, queue_name) == 1  # listing leaves them there

        broken[0] = False
        assert [d.event_id for d in await replay_dead_letters(rabbit_url, [queue_name], {"evt_nope"})] == []
        assert [d.event_id for d in await replay_dead_letters(rabbit_url, [queue_name], None)] == ["evt_poison"]

        async def replayed() -> bool:
            return handled == ["evt_poison"]

        await wait_for(replayed)
        await asyncio.sleep(0.3)
        assert handled == ["evt_poison"]
        assert other == ["evt_poison"]  # the replay went to the queue that gave up on it, no other
        assert await _dlq_depth(rabbit_url, queue_name) == 0
        assert await replay_dead_letters(rabbit_url, [queue_name], None) == []  # once


class TestDeadLetterVisibility:
    async def test_the_worker_exports_dead_letters_and_paused_consumers_and_the_cli_lists_them(
        self, engine, rabbit_url, queue_name, capsys
    ) -> None:
        """What an operator sees: ``dead_letters{queue}`` and its oldest age from the worker that owns
        the queue, ``bus_consumer_paused{queue}`` during an outage, and the CLI's listing."""
        metrics = Metrics("test")
        down = [False]

        async def handler(message: Message) -> None:
            if message.message_id.startswith("evt_poison"):
                raise RuntimeError("cannot apply")
            if down[0]:
                raise DependencyUnavailable("providers-svc down")

        plumbing = Plumbing(
            service="test", database_url="", metrics=metrics, bus_url=rabbit_url, engine=engine, watch_interval=0.1
        )
        plumbing.add_consumer(queue_name, [f"{queue_name}.#"], handler)
        publisher = RabbitBus(rabbit_url)
        await publisher.start()
        lifecycle = plumbing.ctx(web.Application())
        await lifecycle.__anext__()
        try:

            def gauge(name: str) -> float | None:
                return metrics.registry.get_sample_value(name, {"queue": queue_name})

            async def exported_zero() -> bool:
                return gauge("dead_letters") == 0

            await wait_for(exported_zero)
            await publisher.publish(Message(f"{queue_name}.e.v1", b"{}", "evt_poison"))

            async def exported() -> bool:
                return gauge("dead_letters") == 1

            await wait_for(exported)

            async def aged() -> bool:
                # Set by the watcher's refreshes (every 0.1 s): waited for, as a loaded machine runs fewer.
                return (gauge("dead_letters_oldest_age_seconds") or 0) >= 1.0

            await wait_for(aged)  # a second of refreshes, some ten of them
            # The refreshes did not read the dead letter (each read and put-back is a return, a delivery
            # on a quorum queue): only this look has.
            connection = await aio_pika.connect(rabbit_url)
            async with connection:
                channel = await connection.channel()
                [(incoming, _)] = await read_dead_letters(channel, queue_name)
                assert int((incoming.headers or {}).get("x-delivery-count", 0) or 0) <= 1  # type: ignore[call-overload]

            down[0] = True
            await publisher.publish(Message(f"{queue_name}.e.v1", b"{}", "evt_held"))

            async def paused() -> bool:
                return gauge("bus_consumer_paused") == 1

            await wait_for(paused)
            with pytest.raises(ConnectionError, match="paused"):
                await plumbing.check_bus()
            down[0] = False

            async def resumed() -> bool:
                return gauge("bus_consumer_paused") == 0

            await wait_for(resumed)

            code = await asyncio.to_thread(dead_letters_command, "svc", ["list", "--json"], rabbit_url, [queue_name])
            assert code == 0
            listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
            assert [(d["event_id"], d["queue"], d["routing_key"], d["reason"]) for d in listed] == [
                ("evt_poison", queue_name, f"{queue_name}.e.v1", "RuntimeError: cannot apply")
            ]
        finally:
            with contextlib.suppress(StopAsyncIteration):
                await lifecycle.__anext__()
            await publisher.close()
            await _delete_queues(rabbit_url, queue_name, f"{queue_name}.dlq")
