"""The worker's copies of the tenants' endpoints (services/endpoint_copies.py): an event no endpoint takes
costs no statement and leaves no row; every change of what an event fans out to reaches the copies
before the next event (NOTIFY webhook_endpoints, a trigger); the worker's own bookkeeping on the
endpoint rows does not empty them; without the LISTEN connection, or past ``max_age``, every batch reads."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from billing_contracts.events import PaymentCreatedV1, PaymentSucceededV1
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from webhook_dispatcher.keys import deps_key
from webhook_dispatcher.services import endpoint_copies
from webhook_dispatcher.services.endpoint_copies import CHANNEL, EndpointCopies
from webhook_dispatcher.services.ingest import ingest_events


async def _worker(start_app, eventually) -> tuple[Any, EndpointCopies]:  # type: ignore[no-untyped-def]
    """API and a worker that consumes but never delivers, once its LISTEN connection is up."""
    app = await start_app(worker_concurrency=0, endpoint_cache_seconds=60)
    copies = app.app[deps_key].endpoints

    async def listening() -> bool:
        return bool(copies.listening())

    await eventually(listening)
    return app, copies


async def _changed_since(copies: EndpointCopies, epoch: int, eventually) -> None:  # type: ignore[no-untyped-def]
    async def invalidated() -> bool:
        return copies.epoch > epoch

    await eventually(invalidated)


class TestEndpointCopies:
    async def test_an_event_no_endpoint_takes_costs_no_statement_and_leaves_no_row(
        self, start_app, auth, make_event, count, eventually
    ) -> None:  # type: ignore[no-untyped-def]
        app, copies = await _worker(start_app, eventually)
        deps = app.app[deps_key]
        response = await app.post(
            "/v1/webhook-endpoints",
            json={"url": "http://127.0.0.1:9/hook", "events": ["payment.succeeded"]},
            headers=auth(),
        )
        assert response.status == 201
        await _changed_since(copies, 0, eventually)
        reads = copies.reads

        # Read once, then served from the copy: a tenant with an endpoint and a tenant without any.
        assert await ingest_events(deps, [make_event(event_type=PaymentCreatedV1)]) == [0]
        assert await ingest_events(deps, [make_event("ten_b", event_type=PaymentSucceededV1)]) == [0]
        assert await ingest_events(deps, [make_event(event_type=PaymentCreatedV1)]) == [0]
        assert await ingest_events(deps, [make_event("ten_b", event_type=PaymentSucceededV1)]) == [0]
        assert copies.reads == reads + 2
        for table in ("inbox", "webhook_events", "webhook_deliveries"):
            assert await count(table) == 0, table

        # The one that is taken is stored, once, from the copy too.
        taken = make_event(event_type=PaymentSucceededV1)
        assert await ingest_events(deps, [taken, make_event(event_type=PaymentCreatedV1)]) == [1, 0]
        assert await ingest_events(deps, [taken]) == [0]
        assert copies.reads == reads + 2
        assert (await count("inbox"), await count("webhook_events"), await count("webhook_deliveries")) == (1, 1, 1)

    async def test_every_change_of_the_fan_out_reaches_the_copies_before_the_next_event(
        self, start_app, auth, make_event, eventually
    ) -> None:  # type: ignore[no-untyped-def]
        app, copies = await _worker(start_app, eventually)
        deps = app.app[deps_key]
        assert await ingest_events(deps, [make_event(event_type=PaymentCreatedV1)]) == [0]

        epoch = copies.epoch
        response = await app.post("/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/hook"}, headers=auth())
        endpoint = await response.json()
        await _changed_since(copies, epoch, eventually)
        assert await ingest_events(deps, [make_event(event_type=PaymentCreatedV1)]) == [1]

        epoch = copies.epoch
        response = await app.patch(
            f"/v1/webhook-endpoints/{endpoint['id']}", json={"events": ["payment.succeeded"]}, headers=auth()
        )
        assert response.status == 200, await response.text()
        await _changed_since(copies, epoch, eventually)
        assert await ingest_events(deps, [make_event(event_type=PaymentCreatedV1)]) == [0]
        assert await ingest_events(deps, [make_event(event_type=PaymentSucceededV1)]) == [1]

        epoch = copies.epoch
        response = await app.patch(f"/v1/webhook-endpoints/{endpoint['id']}", json={"enabled": False}, headers=auth())
        assert response.status == 200, await response.text()
        await _changed_since(copies, epoch, eventually)
        assert await ingest_events(deps, [make_event(event_type=PaymentSucceededV1)]) == [0]

        epoch = copies.epoch
        response = await app.patch(f"/v1/webhook-endpoints/{endpoint['id']}", json={"enabled": True}, headers=auth())
        assert response.status == 200, await response.text()
        await _changed_since(copies, epoch, eventually)
        assert await ingest_events(deps, [make_event(event_type=PaymentSucceededV1)]) == [1]

        epoch = copies.epoch
        response = await app.delete(f"/v1/webhook-endpoints/{endpoint['id']}", headers=auth())
        assert response.status in (200, 204), await response.text()
        await _changed_since(copies, epoch, eventually)
        assert await ingest_events(deps, [make_event(event_type=PaymentSucceededV1)]) == [0]

    async def test_the_workers_own_bookkeeping_on_an_endpoint_is_not_announced(
        self, start_app, auth, clean_db: AsyncEngine, database_url: str, eventually
    ) -> None:  # type: ignore[no-untyped-def]
        app, _copies = await _worker(start_app, eventually)
        response = await app.post("/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/hook"}, headers=auth())
        endpoint = await response.json()
        heard: list[str] = []
        conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            await conn.add_listener(CHANNEL, lambda _c, _pid, _channel, payload: heard.append(payload))
            for change in (
                "UPDATE webhook_endpoints SET last_success_at = now(), failing_since = now() WHERE id = :id",
                "UPDATE webhook_endpoints SET failing_since = NULL, updated_at = now() WHERE id = :id",
                "UPDATE webhook_endpoints SET events = '[\"payment.created\"]' WHERE id = :id",
            ):
                async with clean_db.begin() as db:
                    await db.execute(text(change), {"id": endpoint["id"]})
            # A marker after them: notifications arrive in commit order, so once it is here, so is
            # everything the updates announced.
            async with clean_db.begin() as db:
                await db.execute(text("SELECT pg_notify(:channel, 'marker')"), {"channel": CHANNEL})

            async def marked() -> bool:
                return "marker" in heard

            await eventually(marked)
        finally:
            await conn.close()
        assert heard == ["", "marker"]


class TestTrust:
    @pytest.fixture
    def endpoints(self, clean_db: AsyncEngine):  # type: ignore[no-untyped-def]
        async def add(endpoint_id: str, tenant: str = "ten_a") -> None:
            async with clean_db.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO webhook_endpoints (id, tenant_id, url, events, secret_encrypted, enabled,"
                        " created_at, updated_at, livemode)"
                        " VALUES (:id, :tenant, 'http://127.0.0.1:9/hook', '[\"*\"]', 'x', true, now(), now(), false)"
                    ),
                    {"id": endpoint_id, "tenant": tenant},
                )

        return add

    async def test_copies_are_not_used_without_the_listener_past_max_age_or_with_max_age_zero(
        self, clean_db: AsyncEngine, endpoints
    ) -> None:  # type: ignore[no-untyped-def]
        now = [0.0]
        listening = [False]
        copies = EndpointCopies(max_age=5, listening=lambda: listening[0], clock=lambda: now[0])
        await endpoints("we_1")
        assert [e.id for e in (await copies.of(clean_db, ["ten_a"]))["ten_a"]] == ["we_1"]
        await endpoints("we_2")
        # Not listening: every call reads (and what it read is not kept).
        assert [e.id for e in (await copies.of(clean_db, ["ten_a"]))["ten_a"]] == ["we_1", "we_2"]
        assert copies.reads == 2
        listening[0] = True
        await copies.of(clean_db, ["ten_a", "ten_b"])
        await endpoints("we_3")
        found = await copies.of(clean_db, ["ten_a", "ten_b"])
        assert ([e.id for e in found["ten_a"]], found["ten_b"]) == (["we_1", "we_2"], ())
        assert copies.reads == 3
        now[0] = 5.0  # max_age reached
        assert [e.id for e in (await copies.of(clean_db, ["ten_a"]))["ten_a"]] == ["we_1", "we_2", "we_3"]
        assert copies.reads == 4
        never = EndpointCopies(max_age=0, listening=lambda: True)
        await never.of(clean_db, ["ten_a"])
        await never.of(clean_db, ["ten_a"])
        assert never.reads == 2

    async def test_a_read_that_an_invalidation_overtook_is_not_kept(
        self, clean_db: AsyncEngine, endpoints, monkeypatch: pytest.MonkeyPatch
    ) -> None:  # type: ignore[no-untyped-def]
        copies = EndpointCopies(max_age=60, listening=lambda: True)
        await endpoints("we_1")
        real_fetch = endpoint_copies.fetch_alone

        async def fetch_then_notified(engine, query, params):  # type: ignore[no-untyped-def]
            # A notification handled while the read was on the wire.
            rows = await real_fetch(engine, query, params)
            copies.invalidate()
            return rows

        monkeypatch.setattr(endpoint_copies, "fetch_alone", fetch_then_notified)
        await copies.of(clean_db, ["ten_a"])
        monkeypatch.setattr(endpoint_copies, "fetch_alone", real_fetch)
        await copies.of(clean_db, ["ten_a"])  # read again: the overtaken read was not kept
        await copies.of(clean_db, ["ten_a"])  # kept now
        assert copies.reads == 2
