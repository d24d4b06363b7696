"""RabbitMQ bus on aio-pika: durable topic exchange, one quorum queue per consuming service,
publisher confirms, bounded redelivery (``x-delivery-limit``) and then a per-queue dead-letter queue."""

from __future__ import annotations

import asyncio
import logging

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractRobustConnection,
)
from billing_contracts.routing import DEAD_LETTER_EXCHANGE, EVENTS_EXCHANGE

from billing_runtime.bus.base import Handler, Message

log = logging.getLogger(__name__)


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
    ) -> None:
        self.url = url
        self.max_deliveries = max_deliveries
        self.retry_delay = retry_delay
        self.prefetch = prefetch
        self.publish_timeout = publish_timeout
        self._connection: AbstractRobustConnection | None = None
        self._publish_channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        # (queue, its channel, the consumer tag) per subscription: closed by ``close``, and what ``check``
        # verifies is still consuming (closing the connection closes a channel whose subscribe failed).
        self._consumers: list[tuple[str, AbstractChannel, str]] = []
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self._connection = await aio_pika.connect_robust(self.url, client_properties={"connection_name": "billing"})
        await self._open_publisher()

    async def _open_publisher(self) -> None:
        assert self._connection is not None
        self._publish_channel = await self._connection.channel(publisher_confirms=True)
        self._exchange = await self._publish_channel.declare_exchange(
            EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )

    async def close(self) -> None:
        for _, channel, _ in self._consumers:
            if not channel.is_closed:
                await channel.close()
        self._consumers.clear()
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

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

        async def on_message(incoming: AbstractIncomingMessage) -> None:
            message = Message(
                routing_key=incoming.routing_key or "",
                body=incoming.body,
                message_id=incoming.message_id or "",
                headers={k: str(v) for k, v in (incoming.headers or {}).items()},
            )
            try:
                await handler(message)
            except Exception:
                delivery = int(incoming.headers.get("x-delivery-count", 0) or 0) + 1 if incoming.headers else 1
                log.exception("handler of %s failed on %s (delivery %d)", queue, message.message_id, delivery)
                # A short pause before the requeue so a failing dependency is not hammered in a hot loop.
                await asyncio.sleep(self.retry_delay * min(delivery, 10))
                await incoming.nack(requeue=True)
            else:
                await incoming.ack()

        tag = await main.consume(on_message)
        self._consumers.append((queue, channel, tag))

    async def check(self) -> None:
        """Ready only while connected and every subscription still has its consumer: the broker cancels
        a consumer on its own (its queue deleted, say), and aio-pika only takes it up again once the
        queue exists, so a worker could otherwise look ready while consuming nothing."""
        if self._connection is None or self._connection.is_closed:
            raise ConnectionError("RabbitMQ connection is closed")
        for queue, channel, tag in self._consumers:
            try:
                consuming = tag in (await channel.get_underlay_channel()).consumers
            except aiormq.exceptions.AMQPError:
                consuming = False
            if channel.is_closed or not consuming:
                raise ConnectionError(f"not consuming from {queue} (consumer cancelled or channel closed)")
