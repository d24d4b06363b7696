"""``GET /admin/status`` on the running platform, both modes: every service answers its part (queues,
outbox, workers, janitors, the dispatcher's delivery backlog, reconciliation's runs); a receiver that
does not answer shows as a delivery backlog; distributed, events published while a queue's only
consumer is stopped show as that queue's depth with no consumer, drained once it is back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from .load import Platform

SERVICES = {"payments", "providers", "webhooks", "reconciliation"}
WEBHOOK_EVENTS = "webhooks.events"

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def _status(http: aiohttp.ClientSession, platform: Platform) -> dict[str, Any]:
    async with http.get(
        f"{platform.gateway_url}/admin/status", headers={"Authorization": f"Bearer {platform.admin_token}"}
    ) as r:
        assert r.status == 200, await r.text()
        body: dict[str, Any] = await r.json()
        return body


async def _until(
    read: Callable[[], Awaitable[dict[str, Any]]], ok: Callable[[dict[str, Any]], bool], timeout: float = 30
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body = await read()
    while not ok(body):
        if time.monotonic() > deadline:
            raise AssertionError(f"never came true: {body}")
        await asyncio.sleep(0.3)
        body = await read()
    return body


def _queue(service: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(q for q in service["queues"] if q["name"] == name)
    return found


async def test_every_service_reports_and_a_stalled_receiver_is_a_backlog(
    platform: Platform, http: aiohttp.ClientSession, new_tenant: Any, aiohttp_server: Any
) -> None:
    async with http.get(f"{platform.gateway_url}/admin/status") as r:
        assert r.status == 401
        assert (await r.json())["code"] == "unauthorized"

    # The workers' first heartbeats carry their sweepers' first passes (a fresh platform: wait for them).
    status = await _until(
        lambda: _status(http, platform),
        lambda s: all(
            s["services"][name]["reachable"] and s["services"][name]["janitor"].get(janitor) is not None
            for name, janitor in (("payments", "expiry"), ("providers", "refund-retries"))
        ),
    )
    assert status["object"] == "platform_status"
    assert status["mode"] == platform.mode
    assert set(status["services"]) == SERVICES
    for name, service in status["services"].items():
        assert service["reachable"] is True, (name, service)
        assert (service["service"], service["mode"]) == (name, platform.mode)
        assert service["queues"], name
        for queue in service["queues"]:
            assert "error" not in queue, (name, queue)
            assert queue["consumers"] >= 1, (name, queue)
            assert queue["dead_letters"]["depth"] == 0, (name, queue)
        assert service["outbox"]["backlog"] >= 0
        assert service["workers"]["alive_count"] >= 1
    services = status["services"]
    assert set(services["payments"]["janitor"]) == {"expiry", "idempotency-pruning"}
    assert services["payments"]["janitor"]["expiry"]["outcome"] in ("running", "succeeded")
    assert set(services["providers"]["janitor"]) == {"refund-retries"}
    assert set(services["reconciliation"]["reconciliation"]["last_runs"]) == {"admin", "cli", "schedule"}
    assert {"pending", "due", "oldest_due_age_seconds", "leased"} <= set(services["webhooks"]["deliveries"])
    # Nothing secret: no database or broker URL.
    text = str(status)
    assert "postgresql" not in text and "amqp://" not in text and platform.admin_token not in text

    # A tenant's receiver that takes the webhooks and does not answer: the deliveries wait, leased.
    release = asyncio.Event()

    async def stall(_request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", stall)
    server = await aiohttp_server(app, host="127.0.0.1")
    tenant = await new_tenant()
    async with http.post(
        f"{platform.gateway_url}/v1/webhook-endpoints",
        json={"url": f"http://127.0.0.1:{server.port}/hook", "events": ["payment.created"]},
        headers=tenant.auth,
    ) as r:
        assert r.status == 201, await r.text()
    try:
        await tenant.create_payment("status-1")
        # The delivery waits on the receiver: pending, and either due or leased by the worker sending it
        # (a lease moves its next attempt past the send's timeout, so it is not "due" meanwhile).
        stalled = await _until(
            lambda: _status(http, platform),
            lambda s: (
                s["services"]["webhooks"]["deliveries"]["pending"] >= 1
                and s["services"]["webhooks"]["deliveries"]["due"] + s["services"]["webhooks"]["deliveries"]["leased"]
                >= 1
            ),
        )
        deliveries = stalled["services"]["webhooks"]["deliveries"]
        assert deliveries["pending"] >= 1 and deliveries["due"] + deliveries["leased"] >= 1
    finally:
        release.set()


@pytest.mark.parametrize("platform", ["distributed"], indirect=True)
async def test_a_queue_without_its_consumer_shows_its_depth(
    platform: Platform, http: aiohttp.ClientSession, new_tenant: Any
) -> None:
    tenant = await new_tenant()
    code, _ = platform.terminate("webhooks-worker", timeout=40)
    assert code == 0
    try:
        for i in range(3):
            await tenant.create_payment(f"status-depth-{i}", order_id=f"order-{i}")
        waiting = await _until(
            lambda: _status(http, platform),
            lambda s: _queue(s["services"]["webhooks"], WEBHOOK_EVENTS)["depth"] >= 3,
        )
        queue = _queue(waiting["services"]["webhooks"], WEBHOOK_EVENTS)
        assert queue["consumers"] == 0
        # The stopped worker left gracefully: gone from the list, not stale.
        workers = waiting["services"]["webhooks"]["workers"]
        assert [w["role"] for w in workers["alive"]] == ["api"]
    finally:
        platform.restart("webhooks-worker")

    def drained_by_its_worker(s: dict[str, Any]) -> bool:
        queue = _queue(s["services"]["webhooks"], WEBHOOK_EVENTS)
        return bool(queue["depth"] == 0 and queue["consumers"] == 1)

    drained = await _until(lambda: _status(http, platform), drained_by_its_worker)
    assert drained["services"]["webhooks"]["workers"]["alive_count"] == 2
