"""The relay publishes provider events through RabbitMQ (real broker on 127.0.0.1:5672)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import aio_pika
import pytest
from billing_contracts.events import ProviderPaymentSucceededV1, parse_event
from billing_runtime.bus import Message
from billing_runtime.bus.rabbit import RabbitBus
from billing_runtime.testing import require_rabbitmq
from providers_svc.app import create_app

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
async def rabbit_queue() -> AsyncIterator[tuple[RabbitBus, str]]:
    url = require_rabbitmq()
    queue = f"providers-test.{uuid.uuid4().hex}"
    subscriber = RabbitBus(url)
    await subscriber.start()
    yield subscriber, queue
    await subscriber.close()
    # Our queues are durable and never auto-deleted: a test removes what it declared.
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(queue)
        await channel.queue_delete(f"{queue}.dlq")


async def test_relay_publishes_provider_events_through_rabbitmq(
    aiohttp_client: Any,
    engine: Any,
    settings: Any,
    rabbit_queue: tuple[RabbitBus, str],
    internal_headers: Callable[..., dict[str, str]],
    payment_request: Callable[..., dict[str, Any]],
    sandbox_callback: Any,
    db_read: Any,
    eventually: Any,
) -> None:
    subscriber, queue = rabbit_queue
    mine: list[Message] = []
    body = payment_request()

    async def handler(message: Message) -> None:
        # Other test runs may publish on the same broker: keep only this test's payment.
        if body["payment_id"].encode() in message.body:
            mine.append(message)

    await subscriber.subscribe(queue, ["providers.provider.payment.#"], handler)

    # No bus given: the app's plumbing opens its own RabbitBus from bus_url.
    app_settings = settings.model_copy(update={"bus_url": require_rabbitmq()})
    client = await aiohttp_client(create_app(app_settings, engine=engine, roles=("api", "worker")))
    started = await client.post("/internal/payments/start", json=body, headers=internal_headers())
    assert started.status == 200
    callback = sandbox_callback((await started.json())["provider_transaction_id"])
    for _ in range(2):
        assert (await client.post("/billing/sandbox", data=callback.body, headers=callback.headers)).status == 200

    async def delivered() -> bool:
        return len(mine) >= 1 and await db_read("outbox") == []

    await eventually(delivered, within=15)
    await asyncio.sleep(0.5)
    [message] = mine
    event = parse_event(message.body)
    assert isinstance(event, ProviderPaymentSucceededV1)
    assert message.message_id == event.event_id
    assert message.routing_key == "providers.provider.payment.succeeded.v1"
    assert event.data.payment_id == body["payment_id"]
    ready = await client.get("/readyz")
    assert (await ready.json())["checks"] == {"database": "ok", "bus": "ok"}
