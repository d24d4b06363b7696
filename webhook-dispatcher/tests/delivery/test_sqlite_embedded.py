"""The embedded mode: SQLite (migrated by the same Alembic scripts), in-process bus, plain claiming."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from billing_contracts.events import PaymentCreatedV1
from billing_runtime.bus import MemoryBus
from billing_runtime.migrations import upgrade_async
from sqlalchemy import select, update
from webhook_dispatcher.app import create_app
from webhook_dispatcher.db.models import Delivery, Endpoint
from webhook_dispatcher.keys import dispatcher_key, plumbing_key

SERVICE_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def sqlite_app(tmp_path, aiohttp_client, settings_factory):  # type: ignore[no-untyped-def]
    """Start the app (api + worker) on a migrated SQLite file with an in-process bus; returns
    ``(client, bus)``."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'webhooks.db'}"
    await upgrade_async(SERVICE_ROOT, url)
    bus = MemoryBus()
    await bus.start()

    async def start(**overrides):  # type: ignore[no-untyped-def]
        return await aiohttp_client(create_app(settings_factory(database_url=url, **overrides), bus=bus)), bus

    yield start
    await bus.close()


class TestSqlite:
    async def test_event_is_delivered_on_sqlite(
        self, sqlite_app, auth, receiver, make_event, as_message, eventually
    ) -> None:
        client, bus = await sqlite_app()
        hook = await receiver(responses=[500], default=200)
        created = await (await client.post("/v1/webhook-endpoints", json={"url": hook.url}, headers=auth())).json()
        hook.secrets.append(created["secret"])
        event = make_event(livemode=True)
        await bus.publish(as_message(event))

        async def delivered() -> bool:
            rows = (await (await client.get("/v1/webhook-deliveries", headers=auth())).json())["data"]
            return bool(rows) and rows[0]["status"] == "succeeded"

        await eventually(delivered, 10)
        assert hook.ids() == [event.event_id, event.event_id]
        assert all(hit.verified for hit in hook.hits)
        assert all(json.loads(hit.body)["livemode"] is True for hit in hook.hits)
        [row] = (await (await client.get("/v1/webhook-deliveries", headers=auth())).json())["data"]
        assert row["livemode"] is True

    async def test_pending_deliveries_of_an_endpoint_disabled_behind_their_back_are_given_up_on_sqlite(
        self, sqlite_app, auth, endpoint_at, receiver, make_event, as_message
    ) -> None:
        # A worker that consumes but never delivers on its own: its dispatcher is driven by hand.
        client, bus = await sqlite_app(worker_concurrency=0)
        gone = await endpoint_at(client, await receiver())
        for _ in range(10):
            await bus.publish(as_message(make_event(event_type=PaymentCreatedV1)))
        engine = client.app[plumbing_key].engine
        async with engine.begin() as conn:
            await conn.execute(update(Endpoint).where(Endpoint.id == gone["id"]).values(enabled=False))
        live = await endpoint_at(client, await receiver())
        await client.post(f"/v1/webhook-endpoints/{live['id']}/test", headers=auth())

        claimed = await client.app[dispatcher_key].claim(2)

        assert [item.endpoint_id for item in claimed] == [live["id"]]
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(Delivery.status, Delivery.last_error).where(Delivery.endpoint_id == gone["id"])
                )
            ).all()
        assert rows == [("failed", "endpoint disabled")] * 10
