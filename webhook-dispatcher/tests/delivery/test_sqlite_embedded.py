"""The embedded mode: SQLite (migrated by the same Alembic scripts), in-process bus, plain claiming."""

from __future__ import annotations

from pathlib import Path

from billing_runtime.bus import MemoryBus
from billing_runtime.migrations import upgrade_async
from webhook_dispatcher.app import create_app

SERVICE_ROOT = Path(__file__).resolve().parents[2]


class TestSqlite:
    async def test_event_is_delivered_on_sqlite(
        self, tmp_path, aiohttp_client, settings_factory, auth, receiver, make_event, as_message, eventually
    ) -> None:
        url = f"sqlite+aiosqlite:///{tmp_path / 'webhooks.db'}"
        await upgrade_async(SERVICE_ROOT, url)
        bus = MemoryBus()
        await bus.start()
        client = await aiohttp_client(create_app(settings_factory(database_url=url), bus=bus))
        hook = await receiver(responses=[500], default=200)
        created = await (await client.post("/v1/webhook-endpoints", json={"url": hook.url}, headers=auth())).json()
        hook.secrets.append(created["secret"])
        event = make_event()
        await bus.publish(as_message(event))

        async def delivered() -> bool:
            rows = (await (await client.get("/v1/webhook-deliveries", headers=auth())).json())["data"]
            return bool(rows) and rows[0]["status"] == "succeeded"

        await eventually(delivered, 10)
        assert hook.ids() == [event.event_id, event.event_id]
        assert all(hit.verified for hit in hook.hits)
        await bus.close()
