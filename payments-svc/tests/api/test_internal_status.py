"""``GET /internal/status`` of payments-svc (billing_runtime.status): served by an API process on real
PostgreSQL and RabbitMQ, it shows both queues it consumes with what waits in them and in their dead
letters, a stuck outbox row, itself alive and a worker that stopped beating, its sweepers; and in the
embedded mode (in-process bus) the same sections. Only the gateway's platform calls may read it."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from billing_runtime.testing import scratch_vhost
from billing_runtime.testing_status import (
    STALE_WORKER_ID,
    put_dead_letter,
    put_stale_worker,
    put_stuck_outbox_row,
    put_waiting,
)
from payments_svc.app import create_app
from payments_svc.db.models import heartbeats, outbox
from payments_svc.events.consumers import LOGGED_EVENTS_QUEUE, PROVIDER_EVENTS_QUEUE
from payments_svc.settings import Settings
from sqlalchemy.ext.asyncio import AsyncEngine


def _queue(body: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(q for q in body["queues"] if q["name"] == name)
    return found


@pytest.fixture
def rabbit_url() -> Iterator[str]:
    # A vhost of its own: a platform another test left running on the run's vhost (tests/e2e's live
    # for the session) consumes this queue there, and the depth and consumers counted would be theirs.
    with scratch_vhost(f"status-payments-{os.getpid()}-{secrets.token_hex(3)}") as url:
        yield url


async def test_distributed_api_process_shows_queues_outbox_workers_and_sweepers(
    aiohttp_client: Any,
    settings: Settings,
    clean_db: AsyncEngine,
    rabbit_url: str,
    auth: Callable[..., dict[str, str]],
    providers: Any,
) -> None:
    await put_waiting(rabbit_url, PROVIDER_EVENTS_QUEUE, 2)
    await put_dead_letter(rabbit_url, PROVIDER_EVENTS_QUEUE)
    await put_stuck_outbox_row(clean_db, outbox, "payments.payment.created.v1")
    await put_stale_worker(clean_db, heartbeats)
    distributed = settings.model_copy(update={"bus_url": rabbit_url})
    app = create_app(distributed, engine=clean_db, providers=providers, roles=("api",))
    client = await aiohttp_client(app)

    resp = await client.get("/internal/status", headers=auth(None, None))
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert (body["service"], body["mode"]) == ("payments", "distributed")
    provider_events = _queue(body, PROVIDER_EVENTS_QUEUE)
    # No worker runs: the events wait with no consumer, the dead letter's age is not known here.
    assert (provider_events["depth"], provider_events["consumers"]) == (2, 0)
    assert provider_events["dead_letters"] == {"depth": 1, "oldest_age_seconds": None}
    logged = _queue(body, LOGGED_EVENTS_QUEUE)
    assert logged["error"] == "queue not declared (its worker never started)"
    assert body["outbox"]["backlog"] == 1
    assert body["outbox"]["oldest_age_seconds"] >= 295
    assert body["workers"]["alive_count"] == 1
    assert body["workers"]["alive"][0]["role"] == "api"
    assert body["workers"]["stale_count"] == 1
    assert body["workers"]["stale"][0]["id"] == STALE_WORKER_ID
    assert body["janitor"] == {"expiry": None, "idempotency-pruning": None}

    # Only the gateway's platform calls: a tenant's call, or reconciliation-svc (confined), is refused.
    assert (await client.get("/internal/status", headers=auth())).status == 403
    assert (await client.get("/internal/status")).status == 401


async def test_embedded_shows_the_sweepers_last_pass(
    client: Any, auth: Callable[..., dict[str, str]], clean_db: AsyncEngine
) -> None:
    resp = await client.get("/internal/status", headers=auth(None, None))
    assert resp.status == 200
    body = await resp.json()
    assert body["mode"] == "embedded"
    assert {q["name"] for q in body["queues"]} == {PROVIDER_EVENTS_QUEUE, LOGGED_EVENTS_QUEUE}
    assert all(q["consumers"] == 1 for q in body["queues"])
    # The expiry sweeper runs at start (then every sweep_interval): its pass is this process's own.
    expiry = body["janitor"]["expiry"]
    assert expiry is not None
    assert expiry["outcome"] in ("running", "succeeded")
    assert body["workers"]["alive"][0]["role"] == "api+worker"
