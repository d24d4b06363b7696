"""An event that reaches the dispatcher's worker while its database refuses connections is held, not
dead-lettered: once the database is back the tenant gets it as one verified webhook, and
``webhooks.events.dlq`` stays empty. The database is one of the test's own, reached through a role of
its own, so refusing its connections touches nobody else's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import pytest
from billing_runtime.bus.rabbit import RabbitBus
from billing_runtime.db import create_engine
from billing_runtime.migrations import upgrade_async
from billing_runtime.testing import require_rabbitmq
from billing_runtime.testing_faults import OwnDatabase, own_database
from sqlalchemy.ext.asyncio import AsyncEngine
from webhook_dispatcher.app import create_app
from webhook_dispatcher.events.consumers import EVENTS_QUEUE

SERVICE_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
async def own_db() -> AsyncIterator[OwnDatabase]:
    async with own_database() as db:
        await upgrade_async(SERVICE_ROOT, db.url)
        yield db


@pytest.fixture(scope="module")
def database_url(own_db: OwnDatabase) -> str:
    return own_db.url


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=4)
    yield engine
    await engine.dispose()


async def _delete_queues() -> None:
    connection = await aio_pika.connect(require_rabbitmq())
    async with connection:
        channel = await connection.channel()
        for name in (EVENTS_QUEUE, f"{EVENTS_QUEUE}.dlq"):
            await channel.queue_delete(name)


@pytest.mark.rabbitmq
class TestConsumerOutage:
    @pytest.fixture(autouse=True)
    async def _drop_queues(self) -> AsyncIterator[None]:
        await _delete_queues()
        yield
        await _delete_queues()

    async def test_an_event_during_a_database_outage_is_delivered_once_it_is_back(
        self, aiohttp_client, clean_db, own_db, settings_factory, auth, receiver, make_event, as_message, eventually
    ) -> None:
        url = require_rabbitmq()
        # Redelivery pauses of 50 ms: the old consumer spent all five deliveries in half a second.
        bus = RabbitBus(url, retry_delay=0.05)
        await bus.start()
        app = create_app(settings_factory(bus_url=url), engine=clean_db, bus=bus)
        client = await aiohttp_client(app)
        hook = await receiver()
        created = await (await client.post("/v1/webhook-endpoints", json={"url": hook.url}, headers=auth())).json()
        hook.secrets.append(created["secret"])
        publisher = RabbitBus(url)
        await publisher.start()
        try:
            await own_db.refuse()
            event = make_event()
            await publisher.publish(as_message(event))
            await asyncio.sleep(2)
            ready = await client.get("/readyz")
            assert ready.status == 503
            await own_db.accept()

            async def delivered() -> bool:
                return len(hook.hits) >= 1

            await eventually(delivered, 15)
            await asyncio.sleep(0.5)
            assert hook.ids() == [event.event_id]
            assert hook.hits[0].verified
            connection = await aio_pika.connect(url)
            async with connection:
                channel = await connection.channel()
                dlq = await channel.declare_queue(f"{EVENTS_QUEUE}.dlq", passive=True)
                assert dlq.declaration_result.message_count == 0
        finally:
            await own_db.accept()
            await publisher.close()
            await client.close()
            await bus.close()
