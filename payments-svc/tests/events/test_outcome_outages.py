"""A provider outcome (or dispute) that arrives while the payments database refuses connections is held, not
dead-lettered: once the database is back the payment reaches SUCCEEDED and nothing is in a dead-letter
queue. On the embedded mode's in-process bus and on RabbitMQ (the worker's own consumer wiring).

The database is one of the test's own, reached through a role of its own, so refusing its connections
(``CONNECTION LIMIT 0`` and its backends terminated) touches nobody else's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aio_pika
import pytest
from billing_contracts.events import (
    ProviderDispute,
    ProviderDisputeUpdatedV1,
    ProviderPaymentOutcome,
    ProviderPaymentSucceededV1,
)
from billing_runtime.bus import MemoryBus, Message
from billing_runtime.bus.memory import ConsumerUnavailable
from billing_runtime.bus.rabbit import RabbitBus
from billing_runtime.db import create_engine
from billing_runtime.migrations import upgrade_async
from billing_runtime.testing import require_rabbitmq
from billing_runtime.testing_faults import OwnDatabase, own_database
from billing_runtime.testing_status import delete_queues
from payments_svc.app import create_app
from payments_svc.events.consumers import LOGGED_EVENTS_QUEUE, PROVIDER_EVENTS_QUEUE
from sqlalchemy.ext.asyncio import AsyncEngine

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


def _outcome(payment: dict) -> Message:  # type: ignore[type-arg]
    event = ProviderPaymentSucceededV1(
        tenant_id="ten_a",
        data=ProviderPaymentOutcome(
            payment_id=payment["id"],
            provider="sandbox",
            provider_transaction_id=f"ptx_{payment['id']}_sandbox",
            provider_reference="sb_ref_1",
            amount=payment["amount"],
            currency=payment["currency"],
        ),
    )
    return Message(f"providers.{event.event_type}.v1", event.model_dump_json().encode(), event.event_id)


def _dispute(payment: dict) -> Message:  # type: ignore[type-arg]
    now = datetime.now(UTC)
    event = ProviderDisputeUpdatedV1(
        tenant_id="ten_a",
        data=ProviderDispute(
            payment_id=payment["id"],
            provider="sandbox",
            provider_transaction_id=f"ptx_{payment['id']}_sandbox",
            provider_dispute_id="dp_outage",
            status="needs_response",
            amount=payment["amount"],
            currency=payment["currency"],
            funds_withdrawn=True,
            provider_created_at=now,
            provider_updated_at=now,
        ),
    )
    return Message(f"providers.{event.event_type}.v1", event.model_dump_json().encode(), event.event_id)


async def _pending(client, auth, new_payment) -> dict:  # type: ignore[no-untyped-def,type-arg]
    created = await new_payment()
    response = await client.post(
        f"/v1/checkout/{created['checkout_token']}/pay", json={"provider": "sandbox"}, headers=auth(None, None)
    )
    assert response.status == 200, await response.text()
    return created  # type: ignore[no-any-return]


async def _status(client, auth, payment) -> str:  # type: ignore[no-untyped-def]
    return (await (await client.get(f"/v1/payments/{payment['id']}", headers=auth())).json())["status"]  # type: ignore[no-any-return]


class TestInProcessBus:
    @pytest.fixture
    def bus(self) -> MemoryBus:
        return MemoryBus(max_deliveries=2)

    async def test_an_outcome_during_a_database_outage_is_applied_once_it_is_back(
        self, client, auth, new_payment, bus, own_db
    ) -> None:
        payment = await _pending(client, auth, new_payment)
        message = _outcome(payment)
        await own_db.refuse()
        try:
            for _ in range(5):  # the relay's passes during the outage; the old bus dead-lettered at 2
                with pytest.raises(ConsumerUnavailable):
                    await bus.publish(message)
            ready = await client.get("/readyz")
            assert ready.status == 503
            assert (await ready.json())["checks"]["bus"] == "unavailable"
        finally:
            await own_db.accept()
        await bus.publish(message)
        assert await _status(client, auth, payment) == "SUCCEEDED"
        assert bus.dead_letters == []
        assert (await client.get("/readyz")).status == 200

    async def test_a_dispute_during_a_database_outage_is_applied_once_it_is_back(
        self, client, auth, new_payment, bus, own_db
    ) -> None:
        payment = await _pending(client, auth, new_payment)
        await bus.publish(_outcome(payment))
        message = _dispute(payment)
        await own_db.refuse()
        try:
            for _ in range(5):
                with pytest.raises(ConsumerUnavailable):
                    await bus.publish(message)
        finally:
            await own_db.accept()
        await bus.publish(message)
        after = await (await client.get(f"/v1/payments/{payment['id']}", headers=auth())).json()
        assert (after["status"], after["dispute"]["status"]) == ("SUCCEEDED", "needs_response")
        assert bus.dead_letters == []


@pytest.mark.rabbitmq
class TestRabbitMQ:
    async def test_an_outcome_during_a_database_outage_is_held_then_applied_and_no_dlq_fills(
        self, engine, own_db, aiohttp_client, auth, settings, providers, make_body
    ) -> None:
        url = require_rabbitmq()
        # Redelivery pauses of 50 ms: the old consumer spent all five deliveries in half a second.
        bus = RabbitBus(url, retry_delay=0.05)
        await bus.start()
        app = create_app(settings.model_copy(update={"bus_url": url}), engine=engine, bus=bus, providers=providers)
        client = await aiohttp_client(app)
        publisher = RabbitBus(url)
        await publisher.start()
        try:
            created = await client.post(
                "/v1/payments", json=make_body(order_id="o-rmq"), headers=auth(**{"Idempotency-Key": "k-rmq"})
            )
            assert created.status == 201, await created.text()
            payment = await created.json()
            response = await client.post(
                f"/v1/checkout/{payment['checkout_token']}/pay", json={"provider": "sandbox"}, headers=auth(None, None)
            )
            assert response.status == 200
            await own_db.refuse()
            await publisher.publish(_outcome(payment))
            await asyncio.sleep(2)
            ready = await client.get("/readyz")
            assert ready.status == 503
            await own_db.accept()
            deadline = asyncio.get_running_loop().time() + 10
            while await _status(client, auth, payment) != "SUCCEEDED":
                assert asyncio.get_running_loop().time() < deadline, "payment not applied"
                await asyncio.sleep(0.05)
            connection = await aio_pika.connect(url)
            async with connection:
                channel = await connection.channel()
                dlq = await channel.declare_queue(f"{PROVIDER_EVENTS_QUEUE}.dlq", passive=True)
                assert dlq.declaration_result.message_count == 0
        finally:
            await publisher.close()
            await client.close()
            await bus.close()
            await delete_queues(url, PROVIDER_EVENTS_QUEUE, LOGGED_EVENTS_QUEUE)
