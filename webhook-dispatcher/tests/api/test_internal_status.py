"""``GET /internal/status`` of webhook-dispatcher (billing_runtime.status): served by an API process on
real PostgreSQL and RabbitMQ, it shows the events' queue with what waits in it and in its dead letters,
a stuck outbox row, the workers alive and stale, and the delivery backlog (pending, due, the oldest due
one's age). Only the gateway's platform calls may read it."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from billing_runtime.internal_auth import INTERNAL_HEADER, sign_internal
from billing_runtime.testing import scratch_vhost
from billing_runtime.testing_status import (
    put_dead_letter,
    put_stale_worker,
    put_stuck_outbox_row,
    put_waiting,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from webhook_dispatcher.app import INTERNAL_AUDIENCE
from webhook_dispatcher.db.models import heartbeats, outbox
from webhook_dispatcher.events.consumers import EVENTS_QUEUE
from webhook_dispatcher.keys import settings_key


def _platform(client: Any) -> dict[str, str]:
    """The gateway's platform call (no tenant), signed with the app's own key."""
    secret = client.app[settings_key].internal_secret.get_secret_value()
    return {INTERNAL_HEADER: sign_internal(secret, issuer="gateway", audience=INTERNAL_AUDIENCE, tenant_id=None)}


@pytest.fixture
def rabbit_url() -> Iterator[str]:
    # A vhost of its own: a platform another test left running on the run's vhost (tests/e2e's live
    # for the session) consumes this queue there, and the depth and consumers counted would be theirs.
    with scratch_vhost(f"status-webhooks-{os.getpid()}-{secrets.token_hex(3)}") as url:
        yield url


async def test_distributed_api_process_shows_queue_outbox_workers(
    start_app: Any, clean_db: AsyncEngine, rabbit_url: str, auth: Any
) -> None:
    await put_waiting(rabbit_url, EVENTS_QUEUE, 1)
    await put_dead_letter(rabbit_url, EVENTS_QUEUE)
    await put_stuck_outbox_row(clean_db, outbox, "webhooks.endpoint.disabled.v1")
    await put_stale_worker(clean_db, heartbeats)
    client = await start_app(roles=("api",), bus_url=rabbit_url)

    resp = await client.get("/internal/status", headers=_platform(client))
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert (body["service"], body["mode"]) == ("webhooks", "distributed")
    [queue] = body["queues"]
    assert (queue["name"], queue["depth"], queue["consumers"]) == (EVENTS_QUEUE, 1, 0)
    assert queue["dead_letters"]["depth"] == 1
    assert body["outbox"]["backlog"] == 1
    assert (body["workers"]["alive_count"], body["workers"]["stale_count"]) == (1, 1)
    assert body["deliveries"] == {"pending": 0, "due": 0, "oldest_due_age_seconds": 0.0, "leased": 0}
    # A tenant's call may not read it.
    assert (await client.get("/internal/status", headers=auth())).status == 403


async def test_the_delivery_backlog(
    aiohttp_server: Any, client: Any, create_endpoint: Any, publish: Any, eventually: Any
) -> None:
    """Deliveries to a receiver that does not answer (yet) are the backlog: pending, due since they were
    made, leased by the worker that is trying them."""
    release = asyncio.Event()

    async def hang(_request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hang)
    server = await aiohttp_server(app)
    await create_endpoint(url=str(server.make_url("/hook")))
    for _ in range(2):
        await publish()

    async def read() -> dict[str, Any]:
        body: dict[str, Any] = await (await client.get("/internal/status", headers=_platform(client))).json()
        return body

    deliveries: dict[str, Any] = {}

    async def both_in_flight() -> bool:
        # One snapshot for every assertion: each attempt times out after 2 s (the tests' request_timeout)
        # and is recorded with its retry a moment away, no longer due nor leased until it is claimed again.
        nonlocal deliveries
        deliveries = (await read())["deliveries"]
        return bool(deliveries["pending"] == 2 and deliveries["leased"] == 2)

    try:
        await eventually(both_in_flight)
        assert deliveries["due"] == 2
        assert deliveries["oldest_due_age_seconds"] >= 0
    finally:
        release.set()
