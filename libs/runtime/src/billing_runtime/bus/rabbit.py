"""RabbitMQ bus on aio-pika: durable topic exchange, one quorum queue per consuming service,
publisher confirms, bounded redelivery and then a per-queue dead-letter queue.

A handler that fails because a dependency is down (``billing_runtime.unavailable.is_outage``) keeps its
message unacked and is retried in place (``OutageHold``): an outage never spends a delivery. Only a
failure on a healthy system is returned to the queue; at ``max_deliveries`` the bus dead-letters the
message itself, with the reason in its headers (``dead_letters``), and the broker's ``x-delivery-limit``
is the backstop for returns the bus does not see (a channel closing with the message unacked).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from billing_contracts.envelope import utcnow
from billing_contracts.routing import DEAD_LETTER_EXCHANGE, EVENTS_EXCHANGE

from billing_runtime.bus.acks import AckRuns
from billing_runtime.bus.base import Handler, Message
from billing_runtime.bus.dead_letters import dead_letter_depth, from_incoming, read_dead_letters
from billing_runtime.bus.holding import HoldExpired, OutageHold
from billing_runtime.bus.letters import ROUTING_KEY_HEADER, DeadLetterStats, dead_letter_headers
from billing_runtime.unavailable import is_outage

log = logging.getLogger(__name__)

# The longest a stop or close spends acknowledging the messages that finished (``_flush_acks``).
ACK_FLUSH_BOUND = 2.0
# The longest a close waits for each channel's and the connection's close to be confirmed: a stop never
# hangs on a broker, or a client state, that does not answer (the broker returns what was not acked
# when the connection goes, at the latest when the process ends).
CLOSE_BOUND = 5.0

# Dead letters read, at most, to find the oldest of a queue's (the depth is always exact).
METRICS_SCAN = 1000


class RabbitBus:
    """One robust connection; one confirming channel for publishing, one channel per subscription."""

    def __init__(
        self,
        url: str,
        *,
        max_deliveries: int = 5,
        retry_delay: float = 0.5,
        prefetch: int = 64,
        publish_timeout: float = 10.0,
        reconnect_interval: float = 1.0,
        outage_max_delay: float = 1.0,
        hold_limit: float = 20 * 60.0,
        ack_linger: float = 0.05,
        outage: Callable[[BaseException], bool] = is_outage,
    ) -> None:
        self.url = url
        self.max_deliveries = max_deliveries
        self.retry_delay = retry_delay
        self.prefetch = prefetch
        self.publish_timeout = publish_timeout
        # aio-pika's default is 5 s: events would wait that long after the broker is back.
        self.reconnect_interval = reconnect_interval
        self.outage_max_delay = outage_max_delay
        # Below the broker's consumer_timeout (30 min by default), after which it closes the channel and
        # every unacked message is returned, one delivery spent each.
        self.hold_limit = hold_limit
        self.outage = outage
        self.ack_linger = ack_linger
        self._holds: dict[str, OutageHold] = {}
        # Per subscribed queue: its finished deliveries, acknowledged in runs (``AckRuns``).
        self._acks: dict[str, AckRuns] = {}
        # The last dead-letter figures per queue (``dead_letter_stats``).
        self._dead_letters_seen: dict[str, DeadLetterStats] = {}
        self._connection: AbstractRobustConnection | None = None
        self._publish_channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        # (queue, its channel, the consumer tag) per subscription: closed by ``close``, and what ``check``
        # verifies is still consuming (closing the connection closes a channel whose subscribe failed).
        self._consumers: list[tuple[str, AbstractChannel, str]] = []
        # (queue, consumer tag) per subscription, for ``stop_consuming``'s basic.cancel.
        self._subscriptions: list[tuple[AbstractQueue, str]] = []
        # The handlers running now (one task per delivered message): ``stop_consuming`` waits for them.
        self._in_flight: set[asyncio.Task[object]] = set()
        self._stopping = False
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self._connection = await aio_pika.connect_robust(
            self.url,
            client_properties={"connection_name": "billing"},
            reconnect_interval=self.reconnect_interval,
        )
        await self._open_publisher()

    async def _open_publisher(self) -> None:
        assert self._connection is not None
        # on_return_raises: a mandatory publish (a dead letter, a hand-back) the broker cannot route
        # fails instead of being acknowledged and lost; events are published mandatory=False (below).
        self._publish_channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        self._exchange = await self._publish_channel.declare_exchange(
            EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )

    async def stop_consuming(self, within: float) -> None:
        """The graceful stop of the consumers: cancel each (basic.cancel: the broker sends no more
        deliveries), let the handlers of the messages already delivered finish and be acked, for at most
        ``within`` seconds; a message held through an outage is handed back (a fresh copy at the back
        of its queue, no delivery spent) instead of waiting for the dependency. ``close`` then closes
        the channels: a handler still running is cancelled and its message returned by the broker."""
        self._stopping = True
        for hold in self._holds.values():
            hold.stop()
        for queue, tag in self._subscriptions:
            try:
                async with asyncio.timeout(max(within, 0.1)):
                    await queue.cancel(tag)
            except (Exception, TimeoutError) as exc:  # the channel is gone: nothing more will arrive on it
                log.warning("could not cancel the consumer of %s (%s)", queue.name, exc)
        self._subscriptions.clear()
        pending = set(self._in_flight)
        if pending:
            log.info("waiting for %d in-flight message handlers", len(pending))
            _, late = await asyncio.wait(pending, timeout=max(within, 0.0))
            if late:
                log.warning("%d message handlers still running at the deadline; their messages go back", len(late))
        await self._flush_acks()

    async def _flush_acks(self) -> None:
        """Ack what finished, before the channels close (else the broker would deliver it again), within
        ``ACK_FLUSH_BOUND``: a stop never waits on a writer that takes nothing (messages not acked by
        then are returned by the broker and deduplicated by their consumer's inbox)."""
        try:
            async with asyncio.timeout(ACK_FLUSH_BOUND):
                for acks in self._acks.values():
                    await acks.flush()
        except TimeoutError:
            log.warning("acknowledging finished messages took over %.0fs; the broker returns the rest", ACK_FLUSH_BOUND)

    async def close(self) -> None:
        await self._flush_acks()
        for acks in self._acks.values():
            acks.close()
        for queue, channel, _ in self._consumers:
            if not channel.is_closed:
                await _bounded(channel.close(), f"closing the channel of {queue}")
        self._consumers.clear()
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await _bounded(connection.close(), "closing the connection")

    async def publish(self, message: Message) -> None:
        await self._publish(await self._publisher(), message)

    async def publish_many(self, messages: list[Message]) -> list[BaseException | None]:
        """All on the one confirming channel, without waiting in between: the broker routes them in
        publish order (AMQP keeps a channel's order) and the confirms, a disk sync each on a quorum
        queue, are awaited together instead of one after the other."""
        exchange = await self._publisher()
        results = await asyncio.gather(*(self._publish(exchange, m) for m in messages), return_exceptions=True)
        for result in results:
            if isinstance(result, asyncio.CancelledError):
                raise result
        return [r if isinstance(r, BaseException) else None for r in results]

    async def _publisher(self) -> AbstractExchange:
        async with self._lock:
            if self._publish_channel is None or self._publish_channel.is_closed:
                await self._open_publisher()
            exchange = self._exchange
        assert exchange is not None
        return exchange

    async def _publish(self, exchange: AbstractExchange, message: Message) -> None:
        # mandatory=False (aio-pika's default is True): an event nobody subscribes to yet is not an error
        # for the publisher, and the broker would otherwise send every such message back in full.
        await exchange.publish(
            aio_pika.Message(
                body=message.body,
                message_id=message.message_id,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                headers=dict(message.headers),
            ),
            routing_key=message.routing_key,
            mandatory=False,
            timeout=self.publish_timeout,
        )

    async def subscribe(self, queue: str, binding_keys: list[str], handler: Handler) -> None:
        assert self._connection is not None, "start() first"
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=self.prefetch)
        exchange = await channel.declare_exchange(EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        dlx = await channel.declare_exchange(DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True)
        dlq = await channel.declare_queue(f"{queue}.dlq", durable=True, arguments={"x-queue-type": "quorum"})
        await dlq.bind(dlx, routing_key=queue)
        main = await channel.declare_queue(
            queue,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-delivery-limit": self.max_deliveries,
                "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
                "x-dead-letter-routing-key": queue,
            },
        )
        for key in binding_keys:
            await main.bind(exchange, routing_key=key)

        hold = self._holds.setdefault(
            queue,
            OutageHold(queue, self.outage, max_delay=self.outage_max_delay, hold_limit=self.hold_limit),
        )

        acks = self._acks.setdefault(queue, AckRuns(self.ack_linger))

        async def on_message(incoming: AbstractIncomingMessage) -> None:
            task = asyncio.current_task()
            assert task is not None  # aiormq runs each delivery's callback as a task of its own
            self._in_flight.add(task)
            try:
                await handle(incoming)
            finally:
                self._in_flight.discard(task)

        async def handle(incoming: AbstractIncomingMessage) -> None:
            message = from_incoming(incoming)
            try:
                await hold.call(handler, message)
            except HoldExpired:
                await self._hand_back(queue, incoming, message)
                acks.settled(incoming)
            except Exception as exc:
                await self._failed(queue, incoming, message, exc)
                acks.settled(incoming)
            else:
                acks.done(incoming)

        tag = await main.consume(on_message)
        self._consumers.append((queue, channel, tag))
        self._subscriptions.append((main, tag))

    async def _failed(self, queue: str, incoming: AbstractIncomingMessage, message: Message, exc: Exception) -> None:
        """A failure on a healthy system: back to the queue, or to its dead letters at the limit."""
        count = (incoming.headers or {}).get("x-delivery-count", 0)
        delivery = (int(count) if isinstance(count, int | str) else 0) + 1
        if delivery >= self.max_deliveries:
            log.error(
                "dead-lettering event %s (routing key %s) of %s after %d deliveries: %s",
                message.message_id,
                message.routing_key,
                queue,
                delivery,
                exc,
                exc_info=exc,
            )
            try:
                await self._publish_raw(
                    DEAD_LETTER_EXCHANGE, queue, message, dead_letter_headers(message, queue, exc, delivery)
                )
            except Exception:
                log.exception("could not dead-letter %s; returning it to %s", message.message_id, queue)
            else:
                await incoming.ack()
                return
        else:
            log.warning("handler of %s failed on %s (delivery %d)", queue, message.message_id, delivery, exc_info=exc)
        # A short pause before the requeue so a failing message is not retried in a hot loop (not when
        # stopping: no consumer of this process takes it again, and the stop should not wait for it).
        if not self._stopping:
            await asyncio.sleep(self.retry_delay * min(delivery, 10))
        await incoming.nack(requeue=True)

    async def _hand_back(self, queue: str, incoming: AbstractIncomingMessage, message: Message) -> None:
        """Held through an outage for ``hold_limit``, or when the process stops: put a fresh copy at the
        back of the queue (the default exchange routes to that queue only) and acknowledge this one, so
        the broker's consumer timeout (or the channel's close) does not return it (and every other
        unacked message) with a delivery spent."""
        log.warning(
            "event %s held through an outage %s; handing it back to %s",
            message.message_id,
            "while stopping" if self._stopping else f"for {self.hold_limit:.0f}s",
            queue,
        )
        try:
            headers = {**message.headers, ROUTING_KEY_HEADER: message.routing_key}
            headers.pop("x-delivery-count", None)
            await self._publish_raw("", queue, message, headers)
        except Exception:
            log.exception("could not hand %s back to %s; returning it", message.message_id, queue)
            await incoming.nack(requeue=True)
        else:
            await incoming.ack()

    async def _publish_raw(
        self, exchange_name: str, routing_key: str, message: Message, headers: dict[str, str]
    ) -> None:
        """Publish with a confirm on the publishing channel to a named exchange ("" is the default one),
        mandatory: the message must reach a queue (the DLQ, or the queue itself) before the caller acks
        the original."""
        await self._publisher()
        assert self._publish_channel is not None
        exchange = (
            self._publish_channel.default_exchange
            if exchange_name == ""
            else await self._publish_channel.get_exchange(exchange_name, ensure=False)
        )
        await exchange.publish(
            aio_pika.Message(
                body=message.body,
                message_id=message.message_id,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                headers=dict(headers),
            ),
            routing_key=routing_key,
            mandatory=True,
            timeout=self.publish_timeout,
        )

    async def queue_depth(self, queue: str) -> int | None:
        """Messages ready in ``queue`` (a passive declare: nothing is read or moved)."""
        if self._connection is None or self._connection.is_closed:
            return None
        channel = await self._connection.channel()
        try:
            declared = await channel.declare_queue(queue, passive=True)
            return int(declared.declaration_result.message_count or 0)
        except aiormq.exceptions.ChannelNotFoundEntity:
            return None
        finally:
            if not channel.is_closed:
                # Bounded: this runs when the watcher is cancelled too, and a stop must not hang on it.
                await _bounded(channel.close(), f"closing the status channel of {queue}")

    async def dead_letter_stats(self, queue: str) -> DeadLetterStats | None:
        """How many messages ``<queue>.dlq`` holds (exact) and when the oldest of them was
        dead-lettered. The depth is a passive declare; the oldest is read from the messages' headers
        only when it is not known (the first look, or the queue shrank: a replay) and otherwise kept,
        because reading a message and putting it back is a return, which counts as a delivery on a
        quorum queue (harmless on 3.10, whose DLQ has no limit; RabbitMQ 4 gives quorum queues a
        default delivery limit of 20, past which a DLQ message would be dropped)."""
        if self._connection is None or self._connection.is_closed:
            return None
        channel = await self._connection.channel()
        try:
            depth = await dead_letter_depth(channel, queue)
            known = self._dead_letters_seen.get(queue)
            if depth == 0:
                stats = DeadLetterStats(0, None)
            elif known is None or depth < known.depth:
                letters = await read_dead_letters(channel, queue, limit=METRICS_SCAN)
                times = [letter.dead_at for _, letter in letters if letter.dead_at is not None]
                stats = DeadLetterStats(depth, min(times) if times else utcnow())
            elif known.depth == 0 or known.oldest is None:
                stats = DeadLetterStats(depth, utcnow())  # the first ones arrived since the last look
            else:
                stats = DeadLetterStats(depth, known.oldest)
            self._dead_letters_seen[queue] = stats
            return stats
        finally:
            if not channel.is_closed:
                await _bounded(channel.close(), f"closing the dead-letter channel of {queue}")

    def paused(self) -> dict[str, str]:
        """The queues whose consumer is waiting out an outage, with the reason."""
        return {queue: hold.reason for queue, hold in self._holds.items() if hold.reason is not None}

    async def check(self) -> None:
        """Ready only while connected and every subscription still has its consumer: the broker cancels
        a consumer on its own (its queue deleted, say), and aio-pika only takes it up again once the
        queue exists, so a worker could otherwise look ready while consuming nothing."""
        if self._connection is None or self._connection.is_closed:
            raise ConnectionError("RabbitMQ connection is closed")
        for queue, channel, tag in self._consumers:
            try:
                underlay = await channel.get_underlay_channel()
                consuming = isinstance(underlay, aiormq.Channel) and tag in underlay.consumers
            except aiormq.exceptions.AMQPError:
                consuming = False
            if channel.is_closed or not consuming:
                raise ConnectionError(f"not consuming from {queue} (consumer cancelled or channel closed)")
        for queue, reason in self.paused().items():
            raise ConnectionError(f"consumer of {queue} paused by an outage: {reason}")


async def _bounded(closing: Awaitable[Any], what: str) -> None:
    try:
        async with asyncio.timeout(CLOSE_BOUND):
            await closing
    except TimeoutError:
        log.warning("%s took over %.0fs; going on without it", what, CLOSE_BOUND)
