"""The queues a service consumes, as its status endpoint shows them (``billing_runtime.status``): depth
(messages ready), consumers, and the dead letters' depth.

Distributed: RabbitMQ passive declares of ``<queue>`` and ``<queue>.dlq`` on a connection of its own
(an API process has no bus), which read counts and move nothing. Embedded: the in-process bus holds
nothing; an event not yet handled waits in its publisher's outbox and a dead-lettered one is kept there,
marked (``billing_runtime.outbox``), so both are counted from the outboxes the bus knows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from billing_runtime.bus.base import topic_matches
from billing_runtime.bus.letters import dlq_name
from billing_runtime.bus.memory import MemoryBus
from billing_runtime.redaction import redact

if TYPE_CHECKING:
    import aio_pika


@dataclass
class QueueStatus:
    name: str
    depth: int | None = None
    consumers: int | None = None
    dead_letters: int | None = None
    # When the oldest dead letter died, where known.
    oldest_dead_at: datetime | None = None
    # Embedded: when the oldest event waiting for this queue was written (RabbitMQ does not say).
    oldest_ready_at: datetime | None = None
    error: str | None = None

    def as_json(self, now: datetime) -> dict[str, object]:
        found: dict[str, object] = {
            "name": self.name,
            "depth": self.depth,
            "consumers": self.consumers,
            "dead_letters": {
                "depth": self.dead_letters,
                "oldest_age_seconds": _age(now, self.oldest_dead_at) if self.dead_letters else None,
            },
        }
        # Embedded only: a RabbitMQ passive declare does not tell how old the head of a queue is.
        found["oldest_ready_age_seconds"] = _age(now, self.oldest_ready_at)
        if self.error is not None:
            found["error"] = self.error
        return found


def _age(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else round(max((now - then).total_seconds(), 0.0), 3)


def describe_error(exc: BaseException) -> str:
    """What went wrong, short and redacted (a broker URL in a message would carry its password)."""
    text = str(exc) or ("no answer in time" if isinstance(exc, TimeoutError) else "")
    return redact(f"{type(exc).__name__}: {text}")[:200]


async def rabbit_queues(url: str, queues: Sequence[str], *, connect_timeout: float) -> list[QueueStatus]:
    """Counts of each queue and its DLQ; on a broker that does not answer, each entry says why."""
    # Imported here: a process without RabbitMQ (the embedded mode, the gateway) never loads aio-pika.
    import aio_pika

    found = [QueueStatus(queue) for queue in queues]
    try:
        connection = await aio_pika.connect(url, timeout=connect_timeout)
    except Exception as exc:
        for status in found:
            status.error = "broker unreachable: " + describe_error(exc)
        return found
    async with connection:
        for status in found:
            main = await _declared(connection, status.name)
            if main is None:
                # Never declared: its consumer never started (a declare would create it: never here).
                status.error = "queue not declared (its worker never started)"
                status.depth, status.consumers, status.dead_letters = 0, 0, 0
                continue
            status.depth, status.consumers = main
            dead = await _declared(connection, dlq_name(status.name))
            status.dead_letters = dead[0] if dead is not None else 0
    return found


async def _declared(connection: aio_pika.abc.AbstractConnection, queue: str) -> tuple[int, int] | None:
    """(messages ready, consumers) of a queue, or None when it does not exist. A channel per declare:
    the broker closes the channel of a passive declare that names no queue."""
    import aiormq

    channel = await connection.channel()
    try:
        declared = await channel.declare_queue(queue, passive=True)
        result = declared.declaration_result
        return int(result.message_count or 0), int(result.consumer_count or 0)
    except aiormq.exceptions.ChannelNotFoundEntity:
        return None
    finally:
        if not channel.is_closed:
            await channel.close()


async def memory_queues(bus: MemoryBus, queues: Mapping[str, Sequence[str]]) -> list[QueueStatus]:
    """Per queue (name → its binding keys): the events its bindings match still waiting in any
    publisher's outbox (a replayed dead letter counts only for the queues it is replayed to), and the
    events it dead-lettered, kept in those outboxes."""
    found = {queue: QueueStatus(queue, depth=0, consumers=bus.consumers(queue), dead_letters=0) for queue in queues}
    for engine, table in list(bus.outboxes.values()):
        t = table
        dead = t.c.dead_at.is_not(None)
        query = select(
            t.c.routing_key, t.c.dead_queues, dead, func.count(), func.min(func.coalesce(t.c.dead_at, t.c.created_at))
        ).group_by(t.c.routing_key, t.c.dead_queues, dead)
        async with engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        for routing_key, dead_queues, is_dead, count, oldest in rows:
            named = set((dead_queues or "").split(",")) - {""}
            for queue, status in found.items():
                if is_dead:
                    if queue in named:
                        assert status.dead_letters is not None
                        status.dead_letters += int(count)
                        status.oldest_dead_at = _earliest(status.oldest_dead_at, oldest)
                    continue
                waits = queue in named if named else any(topic_matches(k, routing_key) for k in queues[queue])
                if waits:
                    assert status.depth is not None
                    status.depth += int(count)
                    status.oldest_ready_at = _earliest(status.oldest_ready_at, oldest)
    return list(found.values())


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


__all__ = ["QueueStatus", "describe_error", "memory_queues", "rabbit_queues"]
