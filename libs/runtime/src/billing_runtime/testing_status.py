"""Test helpers for the status endpoints (``billing_runtime.status``): the real conditions it must show,
made on a real broker and database: a dead letter in a queue's DLQ, events waiting in a queue nobody
consumes, an outbox row a dead relay holds, a worker that stopped beating."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from datetime import timedelta

import aio_pika
from aiormq.abc import FieldValue
from billing_contracts.envelope import utcnow
from billing_contracts.routing import DEAD_LETTER_EXCHANGE
from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from billing_runtime.bus.letters import DEAD_AT_HEADER, QUEUE_HEADER, REASON_HEADER, ROUTING_KEY_HEADER, dlq_name

log = logging.getLogger(__name__)

STALE_WORKER_ID = "gone-host:4242:abcdef"


async def put_dead_letter(url: str, queue: str, *, age: timedelta = timedelta(minutes=1)) -> None:
    """A dead letter of ``queue`` in ``<queue>.dlq`` as the bus writes one (declared as the bus does)."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        dlx = await channel.declare_exchange(DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True)
        dlq = await channel.declare_queue(dlq_name(queue), durable=True, arguments={"x-queue-type": "quorum"})
        await dlq.bind(dlx, routing_key=queue)
        headers: dict[str, FieldValue] = {
            QUEUE_HEADER: queue,
            ROUTING_KEY_HEADER: "test.poison.v1",
            DEAD_AT_HEADER: (utcnow() - age).isoformat(),
            REASON_HEADER: "ValueError: poison",
        }
        message = aio_pika.Message(body=b"{}", message_id=f"evt_{secrets.token_hex(4)}", headers=headers)
        await dlx.publish(message, routing_key=queue)


async def put_waiting(url: str, queue: str, count: int) -> None:
    """``count`` messages in ``queue`` (declared as the bus does, without its consumer)."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.declare_queue(queue, durable=True, arguments={"x-queue-type": "quorum"})
        for _ in range(count):
            message = aio_pika.Message(body=b"{}", message_id=f"evt_{secrets.token_hex(4)}")
            await channel.default_exchange.publish(message, routing_key=queue)


# How long a test's cleanup of its queues may take. A broker that does not answer (a quorum queue
# between leaders after a restart, say) must fail no test that has passed and hold no suite until its
# timeout: what is left is logged, and the next test that declares the queue starts from it.
CLEANUP_BOUND = 15.0


async def delete_queues(url: str, *queues: str, bound: float = CLEANUP_BOUND) -> None:
    """Delete each queue and its dead-letter queue where they exist: a test's cleanup, which never
    raises and never takes more than ``bound`` seconds."""
    try:
        async with asyncio.timeout(bound):
            connection = await aio_pika.connect(url)
            async with connection:
                channel = await connection.channel()
                for queue in queues:
                    for name in (queue, dlq_name(queue)):
                        if channel.is_closed:  # a refused delete closes its channel
                            channel = await connection.channel()
                        with contextlib.suppress(aio_pika.exceptions.AMQPError):
                            await channel.queue_delete(name)
    except (TimeoutError, OSError, aio_pika.exceptions.AMQPError) as exc:
        log.warning("queues %s left after the test: %r", ", ".join(queues), exc)


async def put_stuck_outbox_row(
    engine: AsyncEngine, outbox: Table, routing_key: str, *, age: timedelta = timedelta(minutes=5)
) -> None:
    """A row a relay leased and never published (its process died holding a long lease)."""
    now = utcnow()
    row: dict[str, object] = {"event_id": f"evt_{secrets.token_hex(4)}", "routing_key": routing_key, "body": "{}"}
    row.update(created_at=now - age, claimed_until=now + timedelta(hours=1))
    row["claim_token"] = "dead-relay"  # noqa: S105 (a lease token, no secret)
    async with engine.begin() as conn:
        await conn.execute(insert(outbox).values(**row))


async def put_stale_worker(
    engine: AsyncEngine, heartbeats: Table, *, silent: timedelta = timedelta(minutes=30)
) -> None:
    seen = utcnow() - silent
    row: dict[str, object] = {"worker_id": STALE_WORKER_ID, "role": "worker", "hostname": "gone-host", "pid": 4242}
    row.update(started_at=seen - timedelta(hours=1), last_seen_at=seen, details={})
    async with engine.begin() as conn:
        await conn.execute(insert(heartbeats).values(**row))
