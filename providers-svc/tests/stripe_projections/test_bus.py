"""The projections' events leave through the outbox like every other event: on the in-process bus,
where nothing consumes them yet, and on RabbitMQ (real broker on 127.0.0.1:5672), where a queue bound
to them receives them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aio_pika
import pytest
from billing_contracts.events import StripeObjectEvent, parse_event
from billing_runtime.bus import MemoryBus, Message
from billing_runtime.bus.rabbit import RabbitBus
from billing_runtime.testing import require_rabbitmq
from providers_svc.app import create_app

from .conftest import Project, charge, event

Eventually = Callable[..., Awaitable[None]]


@pytest.mark.postgres
async def test_no_consumer_is_no_problem_on_the_in_process_bus(
    make_client: Any, bus: MemoryBus, project: Project, db_read: Any, eventually: Eventually
) -> None:
    others: list[Message] = []

    async def handler(message: Message) -> None:
        others.append(message)

    # A consumer of other providers events (as payments-svc's): it must not be handed these.
    await bus.subscribe("payments.provider-events", ["providers.provider.payment.*.v1"], handler)
    await make_client(roles=("api", "worker"))
    await project(event(charge(), "charge.succeeded"))

    async def drained() -> bool:
        return await db_read("outbox") == []

    await eventually(drained)
    assert (others, bus.dead_letters) == ([], [])


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


@pytest.mark.postgres
@pytest.mark.rabbitmq
async def test_a_bound_queue_receives_them_through_rabbitmq(
    aiohttp_client: Any,
    engine: Any,
    settings: Any,
    rabbit_queue: tuple[RabbitBus, str],
    project: Project,
    db_read: Any,
    eventually: Eventually,
) -> None:
    subscriber, queue = rabbit_queue
    charge_id = f"ch_{uuid.uuid4().hex}"
    mine: list[Message] = []

    async def handler(message: Message) -> None:
        # Other test runs may publish on the same broker: keep only this test's charge.
        if charge_id.encode() in message.body:
            mine.append(message)

    await subscriber.subscribe(queue, ["providers.stripe.#"], handler)
    app_settings = settings.model_copy(update={"bus_url": require_rabbitmq()})
    await aiohttp_client(create_app(app_settings, engine=engine, roles=("api", "worker")))
    await project(event(charge(charge_id), "charge.succeeded"))

    async def delivered() -> bool:
        return len(mine) == 1 and await db_read("outbox") == []

    await eventually(delivered, within=15)
    [message] = mine
    assert message.routing_key == "providers.stripe.charge.created.v1"
    parsed = parse_event(message.body)
    assert isinstance(parsed, StripeObjectEvent)
    assert parsed.data.id == charge_id
