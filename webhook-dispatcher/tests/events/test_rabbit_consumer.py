"""The bus path on a real RabbitMQ: payments.* events published to the exchange become signed webhooks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aio_pika
import pytest
from billing_runtime.bus.rabbit import RabbitBus
from billing_runtime.testing import require_rabbitmq
from webhook_dispatcher.app import create_app
from webhook_dispatcher.events.consumers import EVENTS_QUEUE


@pytest.mark.rabbitmq
@pytest.mark.slow
class TestRabbitConsumer:
    async def test_payment_event_from_the_broker_is_delivered_once(
        self, aiohttp_client, clean_db, settings_factory, auth, receiver, make_event, as_message, eventually
    ) -> None:
        url = require_rabbitmq()
        app = create_app(settings_factory(bus_url=url), engine=clean_db)
        client = await aiohttp_client(app)
        hook = await receiver()
        created = await (await client.post("/v1/webhook-endpoints", json={"url": hook.url}, headers=auth())).json()
        hook.secrets.append(created["secret"])
        publisher = RabbitBus(url)
        await publisher.start()
        try:
            event = make_event()
            await publisher.publish(as_message(event))
            await publisher.publish(as_message(event))  # at-least-once: a duplicate is ignored

            async def delivered() -> bool:
                return len(hook.hits) >= 1

            await eventually(delivered, 15)
        finally:
            await publisher.close()
        ready = await client.get("/readyz")
        assert ready.status == 200
        assert (await ready.json())["checks"]["bus"] == "ok"
        await asyncio.sleep(0.5)
        assert hook.ids() == [event.event_id]
        assert hook.hits[0].verified
        assert EVENTS_QUEUE == "webhooks.events"

    @pytest.fixture(autouse=True)
    async def _drop_queues(self) -> AsyncIterator[None]:
        # The durable queue lives on the machine's broker: before the test it may hold events left by
        # earlier runs (which the consumer would work through first), and afterwards it would keep
        # collecting every payments event other suites publish. Start and end without it.
        await _delete_queues()
        yield
        await _delete_queues()


async def _delete_queues() -> None:
    connection = await aio_pika.connect(require_rabbitmq())
    async with connection:
        channel = await connection.channel()
        for name in (EVENTS_QUEUE, f"{EVENTS_QUEUE}.dlq"):
            await channel.queue_delete(name)
