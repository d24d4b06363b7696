"""The backlog gauges as a service's ``/metrics`` serves them (real PostgreSQL and RabbitMQ): an app built
as every service builds it (``service_app``, the plumbing as a cleanup context), its watchers refreshing
every 0.1 s, read by scraping the app.

``outbox_backlog`` and ``outbox_oldest_age_seconds``: rows a dead relay leased wait in the outbox (the
relay skips them until their lease is handed back), so the backlog is known and holds still; handed
back, the relay publishes them and both gauges fall. ``bus_queue_messages_ready{queue}``: a consumer
of prefetch 1 whose handler holds its message, so what is published after it waits in the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from billing_contracts.envelope import utcnow
from billing_runtime.app import service_app
from billing_runtime.bus import Message
from billing_runtime.bus.rabbit import RabbitBus
from billing_runtime.metrics import Metrics
from billing_runtime.plumbing import Plumbing
from billing_runtime.testing_status import delete_queues, put_stuck_outbox_row
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq]

WATCH = 0.1  # seconds between the watchers' refreshes


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def serving(plumbing: Plumbing) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """The app a service builds around its plumbing, serving on a free port (its cleanup contexts
    started: the relay and the watchers run) until the block ends."""
    app = service_app(plumbing.metrics, checks={}, internal_secret=None, internal_audience="test")
    app.cleanup_ctx.append(plumbing.ctx)
    async with TestClient(TestServer(app)) as client:
        yield client


async def scrape(client: TestClient[web.Request, web.Application], name: str, **labels: str) -> float | None:
    """The sample ``name`` with ``labels`` of the app's ``/metrics`` (None: not exported)."""
    async with client.get("/metrics") as r:
        assert r.status == 200
        exposition = await r.text()
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None


async def _outbox_rows(engine: AsyncEngine, plumbing: Plumbing) -> int:
    assert plumbing.outbox is not None
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(plumbing.outbox))).scalar_one())


async def test_outbox_gauges_count_the_waiting_rows_and_age_the_oldest_then_fall_to_zero(
    engine: AsyncEngine, schema: Any, rabbit_url: str, queue_name: str
) -> None:
    # Five rows a dead relay holds: one ten minutes old, four of a minute.
    key = f"{queue_name}.thing.v1"  # bound to no queue: the relay's publishes are confirmed and dropped
    await put_stuck_outbox_row(engine, schema.outbox, key, age=timedelta(minutes=10))
    for _ in range(4):
        await put_stuck_outbox_row(engine, schema.outbox, key, age=timedelta(minutes=1))
    plumbing = Plumbing(
        service="gauges-test",
        database_url="postgresql+asyncpg://unused/unused",
        metrics=Metrics("gauges_test"),
        bus_url=rabbit_url,
        outbox=schema.outbox,
        relay_listens=False,
        poll_interval=0.1,
        watch_interval=WATCH,
        engine=engine,
    )
    async with serving(plumbing) as client:

        async def gauges_are(backlog: float, age: Callable[[float], bool]) -> bool:
            count, oldest = await scrape(client, "outbox_backlog"), await scrape(client, "outbox_oldest_age_seconds")
            return count == backlog and oldest is not None and age(oldest)

        # Exported from the relay's process: the backlog, and the age of its oldest row (not 0, not a
        # minute: the ten-minute one). Before the first refresh both read 0.
        await wait_for(lambda: gauges_are(5, lambda age: 600 <= age < 700))
        assert await _outbox_rows(engine, plumbing) == 5  # held still by the lease, nothing published

        # The oldest handed back: the relay publishes it, the backlog is four, the oldest is a minute old.
        async with engine.begin() as conn:
            old = schema.outbox.c.created_at < utcnow() - timedelta(minutes=5)
            await conn.execute(update(schema.outbox).where(old).values(claimed_until=None, claim_token=None))
        await wait_for(lambda: gauges_are(4, lambda age: 60 <= age < 600))

        # The rest handed back: drained, and both gauges say so.
        async with engine.begin() as conn:
            await conn.execute(update(schema.outbox).values(claimed_until=None, claim_token=None))
        await wait_for(lambda: gauges_are(0, lambda age: age == 0))
        assert await _outbox_rows(engine, plumbing) == 0
        assert await scrape(client, "outbox_published_total") == 5


async def test_queue_ready_gauge_counts_the_messages_waiting_for_the_consumer_then_zero(
    engine: AsyncEngine, rabbit_url: str, queue_name: str
) -> None:
    # Prefetch 1: the broker hands the consumer one message at a time; the rest wait in the queue, ready.
    bus = RabbitBus(rabbit_url, prefetch=1)
    publisher = RabbitBus(rabbit_url)
    release = asyncio.Event()
    handled: list[str] = []

    async def handler(message: Message) -> None:
        await release.wait()
        handled.append(message.message_id)

    plumbing = Plumbing(
        service="gauges-test",
        database_url="postgresql+asyncpg://unused/unused",
        metrics=Metrics("gauges_test"),
        bus=bus,
        watch_interval=WATCH,
        engine=engine,
    )
    plumbing.add_consumer(queue_name, [f"{queue_name}.#"], handler)
    await bus.start()
    await publisher.start()
    try:
        async with serving(plumbing) as client:

            async def ready_is(count: float) -> bool:
                return await scrape(client, "bus_queue_messages_ready", queue=queue_name) == count

            await wait_for(lambda: ready_is(0))  # exported for the consumed queue once it is watched
            ids = [f"evt_{i}" for i in range(6)]
            await publisher.publish_many([Message(f"{queue_name}.thing.v1", b"{}", i) for i in ids])
            # The first is with the handler, unacked (not ready); five wait.
            await wait_for(lambda: ready_is(5))
            assert handled == []

            release.set()

            async def all_handled() -> bool:
                return sorted(handled) == ids

            await wait_for(all_handled)
            await wait_for(lambda: ready_is(0))
    finally:
        await publisher.close()
        await bus.close()
        await delete_queues(rabbit_url, queue_name)
