"""An event that reaches the worker while its database refuses connections is held, not counted as a
delivery (never dead-lettered for it): once the database is back it is applied once. The database is
the test's own, reached through a role of its own, so refusing its connections touches nobody else."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from billing_contracts.events import PaymentCreatedV1
from billing_runtime.bus import MemoryBus
from billing_runtime.bus.memory import ConsumerUnavailable
from billing_runtime.db import create_engine
from billing_runtime.migrations import upgrade_async
from billing_runtime.testing_faults import OwnDatabase, own_database
from reconciliation_svc.app import create_app
from sqlalchemy import text

from .support import SERVICE_ROOT, as_message, make_settings, payment_snapshot


@pytest.fixture
async def own_db() -> AsyncIterator[OwnDatabase]:
    async with own_database() as db:
        await upgrade_async(SERVICE_ROOT, db.url)
        yield db


class TestConsumerOutage:
    async def test_an_event_during_a_database_outage_is_held_and_applied_once_it_is_back(
        self, aiohttp_client, own_db: OwnDatabase
    ) -> None:
        engine = create_engine(own_db.url, pool_size=2)
        bus = MemoryBus()
        await bus.start()
        try:
            client = await aiohttp_client(create_app(make_settings(own_db.url), engine=engine, bus=bus))
            event = PaymentCreatedV1(tenant_id="ten_a", data={"payment": payment_snapshot()})
            await own_db.refuse()
            # More attempts than the poison limit: an outage spends none of them.
            for _ in range(MemoryBus.max_deliveries + 2):
                with pytest.raises(ConsumerUnavailable):
                    await bus.publish(as_message(event))
            assert bus.paused()
            assert (await client.get("/readyz")).status == 503
            await own_db.accept()
            await bus.publish(as_message(event))
            assert not bus.dead_letters
            assert not bus.paused()
            async with engine.connect() as conn:
                assert (await conn.execute(text("SELECT count(*) FROM recon_payments"))).scalar_one() == 1
            await client.close()
        finally:
            await own_db.accept()
            await bus.close()
            await engine.dispose()
