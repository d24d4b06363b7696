"""The in-process bus: fan-out by topic, publish returns after handling, a failure stays with the
publisher (nothing waits in memory), each queue on its own, dead letters at the delivery limit."""

import asyncio

import pytest
from billing_contracts.envelope import utcnow
from billing_runtime.bus import DeadLettered, MemoryBus, Message
from billing_runtime.bus.memory import ConsumerUnavailable, HandlerFailed
from billing_runtime.outbox import OutboxRelay
from billing_runtime.unavailable import DependencyUnavailable
from sqlalchemy import func, select


def _recording(seen: list[tuple[str, str]], name: str, *, failures: int = 0):  # type: ignore[no-untyped-def]
    left = [failures]

    async def handler(message: Message) -> None:
        await asyncio.sleep(0)
        seen.append((name, message.message_id))
        if left[0] > 0:
            left[0] -= 1
            raise RuntimeError("transient")

    return handler


class TestMemoryBus:
    async def test_publish_returns_after_every_matching_consumer_handled_it(self) -> None:
        bus = MemoryBus()
        seen: list[tuple[str, str]] = []
        await bus.subscribe("a", ["payments.#"], _recording(seen, "a"))
        await bus.subscribe("b", ["payments.payment.*.v1"], _recording(seen, "b"))
        await bus.subscribe("c", ["providers.#"], _recording(seen, "c"))
        await bus.publish(Message("payments.payment.created.v1", b"{}", "evt_1"))
        assert sorted(seen) == [("a", "evt_1"), ("b", "evt_1")]

    async def test_a_failing_consumer_fails_the_publish_and_only_it_gets_the_message_again(self) -> None:
        bus = MemoryBus()
        seen: list[tuple[str, str]] = []
        await bus.subscribe("ok", ["#"], _recording(seen, "ok"))
        await bus.subscribe("flaky", ["#"], _recording(seen, "flaky", failures=1))
        message = Message("x.y", b"{}", "evt_1")

        with pytest.raises(HandlerFailed):
            await bus.publish(message)
        await bus.publish(message)  # the publisher's next try

        assert seen == [("ok", "evt_1"), ("flaky", "evt_1"), ("flaky", "evt_1")]
        assert bus.dead_letters == []
        await bus.publish(message)  # a later duplicate is delivered like any message (consumers dedupe)
        assert seen[-2:] == [("ok", "evt_1"), ("flaky", "evt_1")]

    async def test_at_the_delivery_limit_the_message_is_dead_lettered_and_the_publish_says_so(self) -> None:
        bus = MemoryBus(max_deliveries=3)
        seen: list[tuple[str, str]] = []
        await bus.subscribe("q", ["#"], _recording(seen, "q", failures=99))
        message = Message("x.y", b"{}", "evt_1")
        for _ in range(2):
            with pytest.raises(HandlerFailed):
                await bus.publish(message)
        with pytest.raises(DeadLettered) as dead:
            await bus.publish(message)
        assert dead.value.queues == {"q": "RuntimeError: transient"}
        assert seen == [("q", "evt_1")] * 3
        assert [(q, m.message_id) for q, m in bus.dead_letters] == [("q", "evt_1")]

    async def test_an_event_whose_consumer_fails_stays_in_the_outbox_until_handled(self, engine, schema) -> None:
        """The embedded mode's durability: the relay deletes an outbox row only once every consumer
        handled the event, so stopping or killing the process at any moment loses nothing."""
        bus = MemoryBus()
        seen: list[tuple[str, str]] = []
        await bus.subscribe("q", ["#"], _recording(seen, "q", failures=1))
        async with engine.begin() as conn:
            row = {
                "event_id": "evt_1",
                "routing_key": "payments.payment.created.v1",
                "body": "{}",
                "created_at": utcnow(),
            }
            await conn.execute(schema.outbox.insert(), [row])
        relay = OutboxRelay(engine, schema.outbox, bus)

        with pytest.raises(ConnectionError):
            await relay.run_once()
        async with engine.connect() as conn:
            assert (await conn.execute(select(func.count()).select_from(schema.outbox))).scalar_one() == 1

        assert await relay.run_once() == 1
        async with engine.connect() as conn:
            assert (await conn.execute(select(func.count()).select_from(schema.outbox))).scalar_one() == 0
        assert seen == [("q", "evt_1")] * 2


class TestMemoryBusOutages:
    async def test_an_outage_does_not_count_towards_the_delivery_limit_and_pauses_the_queue(self) -> None:
        bus = MemoryBus(max_deliveries=2)
        down = [True]
        seen: list[str] = []

        async def handler(message: Message) -> None:
            seen.append(message.message_id)
            if down[0]:
                raise DependencyUnavailable("database down")

        await bus.subscribe("q", ["#"], handler)
        message = Message("x.y", b"{}", "evt_1")
        for _ in range(10):
            with pytest.raises(ConsumerUnavailable):
                await bus.publish(message)
        with pytest.raises(ConnectionError, match="consumer of q paused"):
            await bus.check()

        down[0] = False
        await bus.publish(message)
        assert seen == ["evt_1"] * 11
        assert bus.dead_letters == []
        await bus.check()

    async def test_a_failing_event_does_not_hold_back_the_ones_behind_it_but_an_outage_does(self) -> None:
        bus = MemoryBus()
        seen: list[str] = []

        async def handler(message: Message) -> None:
            seen.append(message.message_id)
            if message.message_id == "evt_poison":
                raise RuntimeError("cannot apply")
            if message.message_id == "evt_down":
                raise DependencyUnavailable("database down")

        await bus.subscribe("q", ["#"], handler)
        results = await bus.publish_many(
            [Message("x.y", b"{}", i) for i in ("evt_poison", "evt_2", "evt_down", "evt_4")]
        )
        assert [type(r).__name__ if r else None for r in results] == [
            "HandlerFailed",
            None,
            "ConsumerUnavailable",
            "ConsumerUnavailable",
        ]
        assert seen == ["evt_poison", "evt_2", "evt_down"]  # evt_4 would only fail the same way
