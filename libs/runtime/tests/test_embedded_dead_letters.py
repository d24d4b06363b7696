"""Dead letters of the in-process bus are kept on disk: the outbox row of an event a consumer gave up on
is marked, not deleted, the events behind it are not held back, and the dead-letters CLI lists it and
replays it to that consumer only, once."""

from __future__ import annotations

import json

import pytest
from billing_contracts.envelope import utcnow
from billing_runtime.bus import MemoryBus, Message
from billing_runtime.db import create_engine
from billing_runtime.dead_letters_cli import OutboxDeadLetters, dead_letters_main
from billing_runtime.outbox import OutboxRelay
from billing_runtime.outbox_dead_letters import (
    list_outbox_dead_letters,
    outbox_dead_letter_stats,
    replay_outbox_dead_letters,
)
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine


@pytest.fixture
async def outbox_engine(engine: AsyncEngine) -> AsyncEngine:
    return engine


async def _insert(engine: AsyncEngine, schema, ids: list[str]) -> None:  # type: ignore[no-untyped-def]
    rows = [{"event_id": i, "routing_key": "x.e.v1", "body": "{}", "created_at": utcnow()} for i in ids]
    async with engine.begin() as conn:
        await conn.execute(schema.outbox.insert(), rows)


async def _outbox(engine: AsyncEngine, schema) -> list[tuple[str, str | None]]:  # type: ignore[no-untyped-def]
    t = schema.outbox
    async with engine.connect() as conn:
        return [tuple(r) for r in await conn.execute(select(t.c.event_id, t.c.dead_queues).order_by(t.c.id))]  # type: ignore[misc]


class TestEmbeddedDeadLetters:
    async def test_a_dead_letter_is_marked_kept_listed_and_replayed_to_its_queue_once(
        self, outbox_engine, schema
    ) -> None:
        bus = MemoryBus(max_deliveries=2)
        broken = [True]
        seen: list[tuple[str, str]] = []

        async def picky(message: Message) -> None:
            seen.append(("picky", message.message_id))
            if broken[0] and message.message_id == "evt_poison":
                raise RuntimeError("cannot apply")

        async def easy(message: Message) -> None:
            seen.append(("easy", message.message_id))

        await bus.subscribe("picky", ["#"], picky)
        await bus.subscribe("easy", ["#"], easy)
        await _insert(outbox_engine, schema, ["evt_poison", "evt_2", "evt_3"])
        relay = OutboxRelay(outbox_engine, schema.outbox, bus)

        with pytest.raises(ConnectionError):
            await relay.run_once()  # evt_poison fails once; the events behind it go through
        assert await _outbox(outbox_engine, schema) == [("evt_poison", None)]
        assert await relay.run_once() == 0  # its second failure: dead-lettered by "picky"
        assert await _outbox(outbox_engine, schema) == [("evt_poison", "picky")]  # kept, marked
        assert await relay.run_once() == 0  # a marked row is not claimed again
        assert await relay.backlog() == 0

        letters = await list_outbox_dead_letters(outbox_engine, schema.outbox)
        assert [(d.event_id, d.queue, d.routing_key, d.reason) for d in letters] == [
            ("evt_poison", "picky", "x.e.v1", "RuntimeError: cannot apply")
        ]
        assert letters[0].dead_at is not None
        stats = await outbox_dead_letter_stats(outbox_engine, schema.outbox)
        assert list(stats) == ["picky"] and stats["picky"][0] == 1

        broken[0] = False
        seen.clear()
        assert [d.event_id for d in await replay_outbox_dead_letters(outbox_engine, schema.outbox, None)] == [
            "evt_poison"
        ]
        assert await replay_outbox_dead_letters(outbox_engine, schema.outbox, None) == []  # once
        assert await relay.run_once() == 1
        assert seen == [("picky", "evt_poison")]  # to the queue that gave up on it, not to "easy"
        assert await _outbox(outbox_engine, schema) == []
        assert await outbox_dead_letter_stats(outbox_engine, schema.outbox) == {}

    async def test_the_cli_lists_and_replays_by_id(self, engine, schema, capsys) -> None:
        url = engine.url.render_as_string(hide_password=False)
        lite = create_engine(url)
        bus = MemoryBus(max_deliveries=1)

        async def poison(message: Message) -> None:
            raise RuntimeError(f"bad {message.message_id}")

        await bus.subscribe("q", ["#"], poison)
        await _insert(lite, schema, ["evt_a", "evt_b"])
        assert await OutboxRelay(lite, schema.outbox, bus).run_once() == 0
        await lite.dispose()
        sources = [OutboxDeadLetters(url, schema.outbox)]

        # The CLI runs its own event loop, as from a shell: off this test's loop.
        import asyncio

        assert await asyncio.to_thread(dead_letters_main, "svc", ["list", "--json"], sources) == 0
        listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [(d["event_id"], d["queue"], d["reason"]) for d in listed] == [
            ("evt_a", "q", "RuntimeError: bad evt_a"),
            ("evt_b", "q", "RuntimeError: bad evt_b"),
        ]
        assert await asyncio.to_thread(dead_letters_main, "svc", ["replay", "--id", "evt_b"], sources) == 0
        assert "replayed evt_b to q" in capsys.readouterr().out
        assert await asyncio.to_thread(dead_letters_main, "svc", ["replay", "--id", "evt_b"], sources) == 1
        assert "no dead letter evt_b" in capsys.readouterr().out
        assert await asyncio.to_thread(dead_letters_main, "svc", ["list"], sources) == 0
        out = capsys.readouterr().out
        assert "evt_a" in out and "evt_b" not in out
