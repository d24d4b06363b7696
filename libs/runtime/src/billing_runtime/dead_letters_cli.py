"""``<service> dead-letters list | replay``: the operator's view of dead letters.

Distributed mode: the broker's ``<queue>.dlq`` of each queue the service consumes. Embedded mode
(``billing-embedded dead-letters``): the marked rows of every service's outbox. Both list the event id,
the queue that gave up on it, its routing key, when and why; ``replay`` sends each chosen one back to
that queue only, once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Table

from billing_runtime.bus.letters import DeadLetter
from billing_runtime.db import create_engine
from billing_runtime.outbox_dead_letters import list_outbox_dead_letters, replay_outbox_dead_letters


class DeadLetterSource(Protocol):
    async def read(self) -> list[DeadLetter]: ...

    async def replay(self, ids: set[str] | None) -> list[DeadLetter]: ...


@dataclass(frozen=True)
class BrokerDeadLetters:
    """The ``<queue>.dlq`` queues on RabbitMQ (aio-pika imported on use: the embedded mode never needs it)."""

    url: str
    queues: Sequence[str]

    async def read(self) -> list[DeadLetter]:
        from billing_runtime.bus.dead_letters import list_dead_letters

        return await list_dead_letters(self.url, self.queues)

    async def replay(self, ids: set[str] | None) -> list[DeadLetter]:
        from billing_runtime.bus.dead_letters import replay_dead_letters

        return await replay_dead_letters(self.url, self.queues, ids)


@dataclass(frozen=True)
class OutboxDeadLetters:
    database_url: str
    table: Table

    async def read(self) -> list[DeadLetter]:
        engine = create_engine(self.database_url, pool_size=1)
        try:
            return await list_outbox_dead_letters(engine, self.table)
        finally:
            await engine.dispose()

    async def replay(self, ids: set[str] | None) -> list[DeadLetter]:
        engine = create_engine(self.database_url, pool_size=1)
        try:
            return await replay_outbox_dead_letters(engine, self.table, ids)
        finally:
            await engine.dispose()


def parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"{prog} dead-letters", description="List dead letters; replay them to the queue they came from."
    )
    sub = p.add_subparsers(dest="action", required=True)
    listing = sub.add_parser("list", help="list dead letters (event id, queue, routing key, when, why)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    replay = sub.add_parser("replay", help="send dead letters back to the queue that gave up on them, once")
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", action="append", dest="ids", metavar="EVENT_ID", help="an event id (repeatable)")
    which.add_argument("--all", action="store_true", help="every dead letter")
    return p


def dead_letters_main(prog: str, argv: Sequence[str], sources: Sequence[DeadLetterSource]) -> int:
    args = parser(prog).parse_args(list(argv))
    try:
        return _run(args, sources)
    except Exception as exc:  # unreachable broker or database: say so, no traceback
        print(f"{prog} dead-letters: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, sources: Sequence[DeadLetterSource]) -> int:
    if args.action == "list":
        letters = asyncio.run(_list(sources))
        print("\n".join(_json(d) for d in letters) if args.json else _table(letters))
        return 0
    ids = None if args.all else set(args.ids)
    replayed = asyncio.run(_replay(sources, ids))
    for letter in replayed:
        print(f"replayed {letter.event_id} to {letter.queue}")
    missing = sorted((ids or set()) - {d.event_id for d in replayed})
    for event_id in missing:
        print(f"no dead letter {event_id}")
    print(f"{len(replayed)} replayed")
    return 1 if missing else 0


async def _list(sources: Sequence[DeadLetterSource]) -> list[DeadLetter]:
    return [letter for source in sources for letter in await source.read()]


async def _replay(sources: Sequence[DeadLetterSource], ids: set[str] | None) -> list[DeadLetter]:
    return [letter for source in sources for letter in await source.replay(ids)]


def _json(letter: DeadLetter) -> str:
    return json.dumps(
        {
            "event_id": letter.event_id,
            "queue": letter.queue,
            "routing_key": letter.routing_key,
            "dead_at": letter.dead_at.isoformat() if letter.dead_at is not None else None,
            "reason": letter.reason,
            "deliveries": letter.deliveries,
        }
    )


def _table(letters: list[DeadLetter]) -> str:
    if not letters:
        return "no dead letters"
    rows = [("EVENT ID", "QUEUE", "ROUTING KEY", "DEAD AT", "REASON")] + [
        (
            d.event_id,
            d.queue,
            d.routing_key,
            d.dead_at.isoformat(timespec="seconds") if d.dead_at is not None else "-",
            d.reason,
        )
        for d in letters
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4] for r in rows)
