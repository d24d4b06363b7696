"""``GET /internal/status`` of providers-svc (billing_runtime.status): served by an API process on real
PostgreSQL and RabbitMQ, it shows the refund requests' queue with what waits in it and in its dead
letters, a stuck outbox row, itself alive and a worker that stopped beating, and the refund retrier's
last pass once a worker ran one. Only the gateway's platform calls may read it."""

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
from providers_svc.db.models import heartbeats, outbox
from providers_svc.events.consumers import REFUND_REQUESTS_QUEUE
from sqlalchemy.ext.asyncio import AsyncEngine


@pytest.fixture
def rabbit_url() -> Iterator[str]:
    # A vhost of its own: a platform another test left running on the run's vhost (tests/e2e's live
    # for the session) consumes this queue there, and the depth and consumers counted would be theirs.
    with scratch_vhost(f"status-providers-{os.getpid()}-{secrets.token_hex(3)}") as url:
        yield url


async def test_distributed_api_process_shows_the_queue_outbox_and_workers(
    make_client: Any, engine: AsyncEngine, rabbit_url: str, internal_headers: Callable[..., dict[str, str]]
) -> None:
    await put_waiting(rabbit_url, REFUND_REQUESTS_QUEUE, 4)
    await put_dead_letter(rabbit_url, REFUND_REQUESTS_QUEUE)
    await put_stuck_outbox_row(engine, outbox, "providers.provider.payment.succeeded.v1")
    await put_stale_worker(engine, heartbeats)
    client = await make_client(roles=("api",), bus_url=rabbit_url)

    resp = await client.get("/internal/status", headers=internal_headers(None, issuer="gateway"))
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert (body["service"], body["mode"]) == ("providers", "distributed")
    [queue] = body["queues"]
    assert (queue["name"], queue["depth"], queue["consumers"]) == (REFUND_REQUESTS_QUEUE, 4, 0)
    assert queue["dead_letters"]["depth"] == 1
    assert body["outbox"]["backlog"] == 1
    assert body["outbox"]["oldest_age_seconds"] >= 295
    assert body["workers"]["alive_count"] == 1
    assert body["workers"]["stale_count"] == 1
    assert body["workers"]["stale"][0]["id"] == STALE_WORKER_ID
    assert body["janitor"] == {"refund-retries": None}

    # payments-svc (a tenant's caller) and reconciliation-svc (confined) may not read it.
    assert (await client.get("/internal/status", headers=internal_headers(None))).status == 403
    reconciliation = internal_headers(None, issuer="reconciliation")
    assert (await client.get("/internal/status", headers=reconciliation)).status == 403


async def test_embedded_worker_shows_the_retriers_pass(
    make_client: Any, internal_headers: Callable[..., dict[str, str]], eventually: Any
) -> None:
    client = await make_client(roles=("api", "worker"), refund_retry_poll_interval=0.05)

    async def passed() -> bool:
        resp = await client.get("/internal/status", headers=internal_headers(None, issuer="gateway"))
        body = await resp.json()
        run = body["janitor"]["refund-retries"]
        return run is not None and run["outcome"] == "succeeded" and run["counts"] == {"sent": 0}

    await eventually(passed)
