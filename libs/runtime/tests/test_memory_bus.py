"""The in-process bus: fan-out by topic, publish returns after handling, retries, dead letters."""

import asyncio

from billing_runtime.bus import MemoryBus, Message


class TestMemoryBus:
    async def test_publish_returns_after_every_matching_consumer_handled_it(self) -> None:
        bus = MemoryBus()
        seen: list[tuple[str, str]] = []

        async def make(name: str):
            async def handler(message: Message) -> None:
                await asyncio.sleep(0)
                seen.append((name, message.message_id))

            return handler

        await bus.subscribe("a", ["payments.#"], await make("a"))
        await bus.subscribe("b", ["payments.payment.*.v1"], await make("b"))
        await bus.subscribe("c", ["providers.#"], await make("c"))
        await bus.publish(Message("payments.payment.created.v1", b"{}", "evt_1"))
        assert sorted(seen) == [("a", "evt_1"), ("b", "evt_1")]

    async def test_failing_handler_is_retried_then_dead_lettered(self) -> None:
        bus = MemoryBus(max_deliveries=3, retry_delay=0.001)
        attempts: list[str] = []

        async def handler(message: Message) -> None:
            attempts.append(message.message_id)
            raise RuntimeError("boom")

        await bus.subscribe("q", ["#"], handler)
        await bus.publish(Message("x.y", b"{}", "evt_1"))
        await bus.close()
        assert attempts == ["evt_1"] * 3
        assert [(q, m.message_id) for q, m in bus.dead_letters] == [("q", "evt_1")]

    async def test_handler_that_recovers_gets_the_message_once_more(self) -> None:
        bus = MemoryBus(retry_delay=0.001)
        attempts: list[str] = []

        async def flaky(message: Message) -> None:
            attempts.append(message.message_id)
            if len(attempts) == 1:
                raise RuntimeError("transient")

        await bus.subscribe("q", ["#"], flaky)
        await bus.publish(Message("x.y", b"{}", "evt_1"))
        await bus.close()
        assert attempts == ["evt_1", "evt_1"]
        assert bus.dead_letters == []
