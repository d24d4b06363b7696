"""Dead letters on RabbitMQ: what the bus writes on a message it gives up on, and how an operator (or
the worker's metrics) reads ``<queue>.dlq`` back and replays a message to the one queue it came from.

A dead letter the bus made itself carries ``x-billing-*`` headers (queue, routing key, when, why, after
how many deliveries). One the broker made (its ``x-delivery-limit`` backstop) carries ``x-death``; both
are read the same way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from billing_contracts.envelope import utcnow

from billing_runtime.bus.base import Message
from billing_runtime.bus.letters import (
    DEAD_AT_HEADER,
    DELIVERIES_HEADER,
    OUR_HEADERS,
    QUEUE_HEADER,
    REASON_HEADER,
    REPLAYED_HEADER,
    ROUTING_KEY_HEADER,
    DeadLetter,
    dlq_name,
)

# How many dead letters one listing (or metrics scrape) reads at most.
SCAN_LIMIT = 10_000


def from_incoming(incoming: AbstractIncomingMessage) -> Message:
    """The bus message; one sent to a queue directly (a replay, a hand-back) keeps its event's routing
    key in a header, the delivery's own being the queue's name."""
    headers = incoming.headers or {}
    return Message(
        routing_key=str(headers.get(ROUTING_KEY_HEADER) or incoming.routing_key or ""),
        body=incoming.body,
        message_id=incoming.message_id or "",
        headers={k: str(v) for k, v in (incoming.headers or {}).items()},
    )


def describe(incoming: AbstractIncomingMessage, queue: str) -> DeadLetter:
    headers: dict[str, Any] = dict(incoming.headers or {})
    if QUEUE_HEADER in headers:
        dead_at = _parse_time(headers.get(DEAD_AT_HEADER))
        deliveries = headers.get(DELIVERIES_HEADER)
        return DeadLetter(
            event_id=incoming.message_id or "",
            routing_key=str(headers.get(ROUTING_KEY_HEADER, "")),
            queue=str(headers[QUEUE_HEADER]),
            dead_at=dead_at,
            reason=str(headers.get(REASON_HEADER, "")),
            deliveries=int(deliveries) if deliveries is not None else None,
        )
    deaths = headers.get("x-death") or [{}]
    death: dict[str, Any] = dict(deaths[0]) if isinstance(deaths, list) and deaths else {}
    keys = death.get("routing-keys") or [incoming.routing_key or ""]
    return DeadLetter(
        event_id=incoming.message_id or "",
        routing_key=str(keys[0]),
        queue=str(death.get("queue", queue)),
        dead_at=_parse_time(death.get("time")),
        reason=f"broker: {death.get('reason', 'unknown')}",
        deliveries=None,
    )


def _parse_time(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(value)
    return None


async def read_dead_letters(
    channel: AbstractChannel, queue: str, *, limit: int = SCAN_LIMIT
) -> list[tuple[AbstractIncomingMessage, DeadLetter]]:
    """Take up to ``limit`` messages of the queue's DLQ unacked on ``channel``: closing the channel
    puts back every one not acknowledged (the DLQ has no delivery limit, so that costs nothing).
    A DLQ not declared yet (its consumer never started) holds nothing; the channel is closed then."""
    try:
        dlq = await channel.declare_queue(dlq_name(queue), passive=True)
    except aiormq.exceptions.ChannelNotFoundEntity:
        return []
    taken: list[tuple[AbstractIncomingMessage, DeadLetter]] = []
    while len(taken) < limit:
        incoming = await dlq.get(no_ack=False, fail=False)
        if incoming is None:
            break
        taken.append((incoming, describe(incoming, queue)))
    return taken


async def dead_letter_depth(channel: AbstractChannel, queue: str) -> int:
    try:
        dlq = await channel.declare_queue(dlq_name(queue), passive=True)
    except aiormq.exceptions.ChannelNotFoundEntity:
        return 0
    return int(dlq.declaration_result.message_count or 0)


async def list_dead_letters(url: str, queues: Iterable[str]) -> list[DeadLetter]:
    connection = await aio_pika.connect(url)
    async with connection:
        found: list[DeadLetter] = []
        for queue in queues:
            channel = await connection.channel()
            found.extend(letter for _, letter in await read_dead_letters(channel, queue))
            await channel.close()
        return found


async def replay_dead_letters(url: str, queues: Iterable[str], ids: set[str] | None) -> list[DeadLetter]:
    """Publish each chosen dead letter (``ids``; None = all) to the queue it came from only (through
    the default exchange, which routes by queue name), confirmed, and only then remove it from the DLQ.

    A crash between the two leaves it in both places: the consumer's inbox dedupes a second replay."""
    connection = await aio_pika.connect(url)
    async with connection:
        replayed: list[DeadLetter] = []
        # on_return_raises: a replay the broker cannot route (its queue gone) fails instead of vanishing.
        publisher = await connection.channel(publisher_confirms=True, on_return_raises=True)
        for queue in queues:
            channel = await connection.channel()
            for incoming, letter in await read_dead_letters(channel, queue):
                if ids is not None and letter.event_id not in ids:
                    continue
                headers = {k: v for k, v in (incoming.headers or {}).items() if k not in OUR_HEADERS}
                headers[ROUTING_KEY_HEADER] = letter.routing_key
                headers[REPLAYED_HEADER] = utcnow().isoformat()
                await publisher.default_exchange.publish(
                    aio_pika.Message(
                        body=incoming.body,
                        message_id=incoming.message_id,
                        content_type=incoming.content_type or "application/json",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        headers=headers,
                    ),
                    routing_key=letter.queue,
                    mandatory=True,
                )
                await incoming.ack()
                replayed.append(letter)
            await channel.close()
        return replayed
