"""A service's ``GET /internal/status`` (billing_runtime.status) on real PostgreSQL and RabbitMQ: served
by an API process that consumes nothing, it shows the queues (depth and consumers by passive declares;
the dead letters, their oldest age as the consuming worker read it), a stuck outbox row, the workers
alive and stale (heartbeats), a loop's last pass; embedded, the same from the outboxes; only the
gateway's platform calls may read it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import aio_pika
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from billing_contracts.envelope import utcnow
from billing_contracts.routing import DEAD_LETTER_EXCHANGE
from billing_runtime.app import service_app
from billing_runtime.bus import MemoryBus, Message
from billing_runtime.bus.letters import DEAD_AT_HEADER, QUEUE_HEADER, REASON_HEADER, ROUTING_KEY_HEADER
from billing_runtime.internal_auth import INTERNAL_HEADER, sign_internal
from billing_runtime.metrics import Metrics
from billing_runtime.plumbing import Plumbing
from billing_runtime.status import StatusSource, add_status_route
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

SECRET = "status-test-internal-key-0123456789abcdef"
UNUSED_URL = "postgresql+asyncpg://unused/unused"


@contextlib.asynccontextmanager
async def _running(plumbing: Plumbing) -> AsyncIterator[None]:
    ctx = plumbing.ctx(web.Application())
    await ctx.__anext__()
    try:
        yield
    finally:
        with contextlib.suppress(StopAsyncIteration):
            await ctx.__anext__()


async def _api(source_of: Callable[[Plumbing], StatusSource], plumbing: Plumbing) -> TestClient[Any, Any]:
    app = service_app(
        Metrics(f"status_api_{secrets.token_hex(3)}"),
        checks={},
        internal_secret=SECRET,
        internal_audience="test",
        internal_issuers={"gateway", "payments"},
    )
    add_status_route(app, source_of(plumbing))
    app.cleanup_ctx.append(plumbing.ctx)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


def _as(issuer: str, tenant_id: str | None = None) -> dict[str, str]:
    return {INTERNAL_HEADER: sign_internal(SECRET, issuer=issuer, audience="test", tenant_id=tenant_id)}


async def _eventually(read: Callable[[], Awaitable[dict[str, Any]]], ok: Callable[[dict[str, Any]], bool]) -> Any:
    body: dict[str, Any] = {}
    for _ in range(100):
        body = await read()
        if ok(body):
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"never came true: {json.dumps(body, indent=1)}")


async def _stuck_outbox_row(engine: AsyncEngine, schema: Any, routing_key: str, age: timedelta) -> None:
    """A row a relay leased and never published (its process died holding a long lease)."""
    now = utcnow()
    row = {"event_id": f"evt_{secrets.token_hex(4)}", "routing_key": routing_key, "body": "{}"}
    row.update(created_at=now - age, claimed_until=now + timedelta(hours=1), claim_token="dead-relay")
    async with engine.begin() as conn:
        await conn.execute(insert(schema.outbox).values(**row))


async def _stale_worker(engine: AsyncEngine, schema: Any) -> None:
    seen = utcnow() - timedelta(minutes=30)
    row = {"worker_id": "gone-host:4242:abcdef", "role": "worker", "hostname": "gone-host", "pid": 4242}
    row.update(started_at=seen - timedelta(hours=1), last_seen_at=seen, details={})
    async with engine.begin() as conn:
        await conn.execute(insert(schema.heartbeats).values(**row))


def _queue(body: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(q for q in body["queues"] if q["name"] == name)
    return found


async def test_distributed_queues_outbox_workers_and_passes(
    engine: AsyncEngine, schema: Any, rabbit_url: str, queue_name: str
) -> None:
    consumed, idle = queue_name, f"{queue_name}.idle"
    passes = asyncio.Event()

    async def handler(_message: Message) -> None:
        return None

    worker = Plumbing(
        service="status-test",
        database_url=UNUSED_URL,
        metrics=Metrics("status_worker"),
        bus_url=rabbit_url,
        engine=engine,
        heartbeats=schema.heartbeats,
        role="worker",
        heartbeat_interval=0.2,
        watch_interval=0.2,
    )
    worker.add_consumer(consumed, ["status.#"], handler)

    async def sweeper() -> None:
        while True:
            with worker.runs.track("sweeper") as counts:
                counts["expired"] = 2
            passes.set()
            await asyncio.sleep(0.1)

    worker.add_task("sweeper", sweeper)
    api = Plumbing(
        service="status-test",
        database_url=UNUSED_URL,
        metrics=Metrics("status_api_plumbing"),
        engine=engine,
        heartbeats=schema.heartbeats,
        role="api",
        heartbeat_interval=0.2,
    )

    def source(plumbing: Plumbing) -> StatusSource:
        return StatusSource(
            service="status-test",
            plumbing=plumbing,
            bus_url=rabbit_url,
            queues={consumed: ["status.#"], idle: ["idle.#"]},
            heartbeats=schema.heartbeats,
            outbox=schema.outbox,
            janitors=("sweeper", "never-ran"),
            heartbeat_interval=0.2,
        )

    await _stuck_outbox_row(engine, schema, "status.x.v1", timedelta(minutes=5))
    await _stale_worker(engine, schema)
    connection = await aio_pika.connect(rabbit_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        # A queue nobody consumes, with events waiting in it.
        await channel.declare_queue(idle, durable=True, arguments={"x-queue-type": "quorum"})
        for i in range(3):
            await channel.default_exchange.publish(aio_pika.Message(body=b"{}", message_id=f"evt_{i}"), idle)
        # A dead letter of the consumed queue, as the bus writes one, dead a minute ago (there before
        # the worker starts: its gauges read when each dead letter died on their first look).
        dlx = await channel.declare_exchange(DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True)
        dlq = await channel.declare_queue(f"{consumed}.dlq", durable=True, arguments={"x-queue-type": "quorum"})
        await dlq.bind(dlx, routing_key=consumed)
        dead_at = (utcnow() - timedelta(minutes=1)).isoformat()
        headers = {QUEUE_HEADER: consumed, ROUTING_KEY_HEADER: "status.x.v1", DEAD_AT_HEADER: dead_at}
        headers[REASON_HEADER] = "ValueError: poison"
        await dlx.publish(aio_pika.Message(body=b"{}", message_id="evt_dead", headers=headers), consumed)
    async with _running(worker):
        await asyncio.wait_for(passes.wait(), 5)

        client = await _api(source, api)
        try:

            async def read() -> dict[str, Any]:
                resp = await client.get("/internal/status", headers=_as("gateway"))
                assert resp.status == 200, await resp.text()
                body: dict[str, Any] = await resp.json()
                return body

            body = await _eventually(
                read,
                lambda b: (
                    _queue(b, consumed)["dead_letters"]["oldest_age_seconds"] is not None
                    and b["workers"]["alive_count"] == 2
                    and b["janitor"]["sweeper"] is not None
                ),
            )
            # Only the gateway's platform calls: another issuer, or a call naming a tenant, is refused.
            assert (await client.get("/internal/status", headers=_as("payments"))).status == 403
            assert (await client.get("/internal/status", headers=_as("gateway", "ten_1"))).status == 403
            assert (await client.get("/internal/status")).status == 401
        finally:
            await client.close()

    assert body["object"] == "service_status"
    assert body["mode"] == "distributed"
    assert _queue(body, idle)["depth"] == 3
    assert _queue(body, idle)["consumers"] == 0
    assert _queue(body, idle)["dead_letters"] == {"depth": 0, "oldest_age_seconds": None}
    assert _queue(body, consumed)["consumers"] == 1
    assert _queue(body, consumed)["dead_letters"]["depth"] == 1
    assert 55 <= _queue(body, consumed)["dead_letters"]["oldest_age_seconds"] < 120
    assert body["outbox"]["backlog"] == 1
    assert 295 <= body["outbox"]["oldest_age_seconds"] < 400
    workers = body["workers"]
    assert sorted(w["role"] for w in workers["alive"]) == ["api", "worker"]
    assert next(w for w in workers["alive"] if w["role"] == "worker")["queues"] == [consumed]
    assert workers["stale_count"] == 1
    assert workers["stale"][0]["id"] == "gone-host:4242:abcdef"
    sweeper_run = body["janitor"]["sweeper"]
    assert sweeper_run["outcome"] in ("succeeded", "running")
    assert body["janitor"]["never-ran"] is None
    # No secret: the broker's URL (with its password) appears nowhere.
    assert "guest" not in json.dumps(body)


async def test_a_broker_that_does_not_answer_is_said_per_queue(engine: AsyncEngine, schema: Any) -> None:
    api = Plumbing(service="status-test", database_url=UNUSED_URL, metrics=Metrics("status_down"), engine=engine)
    source = StatusSource(
        service="status-test",
        plumbing=api,
        bus_url="amqp://user:hunter2-secret@127.0.0.1:9/",
        queues={"q.one": ["a.#"]},
        heartbeats=schema.heartbeats,
        outbox=schema.outbox,
    )
    client = await _api(lambda _p: source, api)
    try:
        resp = await client.get("/internal/status", headers=_as("gateway"))
        assert resp.status == 200
        body = await resp.json()
    finally:
        await client.close()
    queue = _queue(body, "q.one")
    assert queue["depth"] is None
    assert queue["error"].startswith("broker unreachable")
    assert "hunter2" not in json.dumps(body)
    assert body["outbox"] == {"backlog": 0, "oldest_age_seconds": 0.0, "dead": 0}


async def test_embedded_queues_from_the_outboxes(engine: AsyncEngine, schema: Any) -> None:
    bus = MemoryBus()
    seen: list[str] = []

    async def handler(message: Message) -> None:
        seen.append(message.message_id)

    plumbing = Plumbing(
        service="status-embedded",
        database_url=UNUSED_URL,
        metrics=Metrics("status_embedded"),
        outbox=schema.outbox,
        relay_listens=False,
        engine=engine,
        bus=bus,
        heartbeats=schema.heartbeats,
        heartbeat_interval=0.2,
    )
    plumbing.add_consumer("embedded.q", ["status.#"], handler)
    await _stuck_outbox_row(engine, schema, "status.held.v1", timedelta(minutes=2))
    await _stuck_outbox_row(engine, schema, "other.thing.v1", timedelta(minutes=2))
    # A dead letter of the in-process bus: the row kept in its publisher's outbox, marked.
    dead_at = utcnow() - timedelta(minutes=3)
    async with engine.begin() as conn:
        await conn.execute(
            insert(schema.outbox).values(
                event_id="evt_dead", routing_key="status.dead.v1", body="{}", created_at=dead_at,
                dead_at=dead_at, dead_queues="embedded.q", dead_reason="embedded.q: ValueError: poison",
            )
        )  # fmt: skip
    source = StatusSource(
        service="status-embedded",
        plumbing=plumbing,
        bus_url="memory://",
        queues={"embedded.q": ["status.#"], "nobody.q": ["nothing.#"]},
        heartbeats=schema.heartbeats,
        outbox=schema.outbox,
        heartbeat_interval=0.2,
    )
    client = await _api(lambda _p: source, plumbing)
    try:
        resp = await client.get("/internal/status", headers=_as("gateway"))
        assert resp.status == 200
        body = await resp.json()
    finally:
        await client.close()
    assert body["mode"] == "embedded"
    queue = _queue(body, "embedded.q")
    assert (queue["depth"], queue["consumers"]) == (1, 1)
    assert queue["oldest_ready_age_seconds"] >= 115
    assert queue["dead_letters"]["depth"] == 1
    assert queue["dead_letters"]["oldest_age_seconds"] >= 175
    assert _queue(body, "nobody.q")["depth"] == 0
    assert _queue(body, "nobody.q")["consumers"] == 0
    assert body["outbox"]["backlog"] == 2
    assert body["outbox"]["dead"] == 1
    assert body["workers"]["alive_count"] == 1
