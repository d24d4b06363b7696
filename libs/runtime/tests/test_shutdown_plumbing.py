"""The plumbing's graceful stop on real PostgreSQL: a stoppable loop is told to stop and waited for (its
last commit included), a plain loop is cancelled, the outbox is drained to the end after both, the
bounded drain leaves what it cannot publish in the outbox, and ``/readyz`` answers 503 while draining."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from billing_contracts.envelope import utcnow
from billing_contracts.events import PaymentData, PaymentSnapshot
from billing_contracts.events.payments import PaymentCreatedV1
from billing_runtime import plumbing as plumbing_module
from billing_runtime.app import service_app
from billing_runtime.bus import MemoryBus, Message
from billing_runtime.db import make_sessionmaker
from billing_runtime.metrics import Metrics
from billing_runtime.plumbing import Plumbing
from billing_runtime.shutdown import Shutdown, shutdown_key
from billing_runtime.uow import UnitOfWork
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine


def _event(i: int) -> PaymentCreatedV1:
    now = utcnow()
    snap = PaymentSnapshot(
        id=f"pay_{i}", status="CREATED", amount=100, currency="USD", order_id=str(i),
        created_at=now, updated_at=now, expires_at=now,
    )  # fmt: skip
    return PaymentCreatedV1(tenant_id="ten_a", data=PaymentData(payment=snap))


async def _write(engine: AsyncEngine, schema, events: list[PaymentCreatedV1]) -> None:  # type: ignore[no-untyped-def]
    async with UnitOfWork(make_sessionmaker(engine), schema.outbox) as uow:
        for e in events:
            uow.emit(e)
        await uow.commit()


async def _backlog(engine: AsyncEngine, schema) -> int:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(schema.outbox))).scalar_one())


class Recording(MemoryBus):
    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.published: list[str] = []
        self.fail = fail

    async def publish(self, message: Message) -> None:
        if self.fail:
            raise ConnectionError("broker away")
        self.published.append(message.message_id)


@contextlib.asynccontextmanager
async def _running(plumbing: Plumbing, app: web.Application) -> AsyncIterator[None]:
    ctx = plumbing.ctx(app)
    await ctx.__anext__()
    try:
        yield
    finally:
        with contextlib.suppress(StopAsyncIteration):
            await ctx.__anext__()


def _plumbing(engine: AsyncEngine, schema, bus: MemoryBus) -> Plumbing:  # type: ignore[no-untyped-def]
    # A relay that polls once an hour and is never woken: only the stop's drain publishes.
    return Plumbing(
        service="shutdown-test",
        database_url="postgresql+asyncpg://unused/unused",
        metrics=Metrics("shutdown_test"),
        outbox=schema.outbox,
        relay_listens=False,
        poll_interval=3600,
        watch_interval=3600,
        engine=engine,
        bus=bus,
    )


async def test_stoppable_loop_finishes_then_the_outbox_is_drained(engine: AsyncEngine, schema) -> None:  # type: ignore[no-untyped-def]
    bus = Recording()
    plumbing = _plumbing(engine, schema, bus)
    stop_asked = asyncio.Event()
    plain_cancelled = asyncio.Event()
    first = _event(1)
    held = [_event(100 + i) for i in range(250)]

    async def stoppable() -> None:
        await stop_asked.wait()
        # Work it held, committed after the stop was asked (a webhook attempt recorded, say).
        await asyncio.sleep(0.3)
        await _write(engine, schema, held)

    async def plain() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            plain_cancelled.set()
            raise

    plumbing.add_task("stoppable", stoppable, stop=stop_asked.set)
    plumbing.add_task("plain", plain)
    app = web.Application()
    async with _running(plumbing, app):
        await asyncio.sleep(0.2)  # the relay's first pass found nothing
        await _write(engine, schema, [first])
        assert not stop_asked.is_set()
    assert stop_asked.is_set() and plain_cancelled.is_set()
    # More than one relay batch (200): the drain runs pass after pass until the outbox is empty.
    assert bus.published == [e.event_id for e in [first, *held]]
    assert await _backlog(engine, schema) == 0


async def test_a_loop_that_does_not_end_on_its_cancellation_does_not_hold_the_stop(
    engine: AsyncEngine,
    schema,
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    # Its cleanup waits for an answer that never comes (a channel's close, say): the stop goes on
    # without it after STOP_BOUND, and still drains the outbox.
    monkeypatch.setattr(plumbing_module, "STOP_BOUND", 0.2)
    bus = Recording()
    plumbing = _plumbing(engine, schema, bus)
    never = asyncio.Event()
    entered_cleanup = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            entered_cleanup.set()
            await never.wait()

    plumbing.add_task("stubborn", stubborn)
    app = web.Application()
    stuck: list[asyncio.Task[object]] = []
    event = _event(1)
    async with asyncio.timeout(10):
        async with _running(plumbing, app):
            await _write(engine, schema, [event])
            stuck = [t for t in asyncio.all_tasks() if t.get_name().endswith(":stubborn")]
    assert entered_cleanup.is_set() and [not t.done() for t in stuck] == [True]
    assert bus.published == [event.event_id]  # the steps after it ran: the outbox was drained
    for task in stuck:  # the test's own clean-up: a second cancellation ends the wait
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_what_cannot_be_published_stays_in_the_outbox(engine: AsyncEngine, schema) -> None:  # type: ignore[no-untyped-def]
    bus = Recording(fail=True)
    plumbing = _plumbing(engine, schema, bus)
    app = web.Application()
    app[shutdown_key] = Shutdown(grace=3)
    loop = asyncio.get_running_loop()
    async with _running(plumbing, app):
        await asyncio.sleep(0.2)
        await _write(engine, schema, [_event(i) for i in range(3)])
        began = loop.time()
    # The broker is away: the drain gives up (at the latest at the deadline) and the rows wait for the
    # next process's relay, released (not leased for 30 s).
    assert loop.time() - began < 3
    assert bus.published == []
    assert await _backlog(engine, schema) == 3
    async with engine.connect() as conn:
        leased = (
            await conn.execute(select(func.count()).where(schema.outbox.c.claimed_until.is_not(None)))
        ).scalar_one()
    assert leased == 0


async def test_readyz_answers_503_once_draining() -> None:
    app = service_app(Metrics("readyz_test"), checks={}, internal_secret=None, internal_audience="x")
    shutdown = Shutdown(grace=5)
    app[shutdown_key] = shutdown
    async with TestClient(TestServer(app)) as client:
        r = await client.get("/readyz")
        assert r.status == 200
        shutdown.begin()
        r = await client.get("/readyz")
        assert r.status == 503
        assert (await r.json())["status"] == "draining"
        assert r.headers["Retry-After"]
        # Still alive, and still serving: only readiness says "send no more".
        assert (await client.get("/healthz")).status == 200


async def test_a_process_with_consumers_builds_the_event_parser_before_it_subscribes(  # type: ignore[no-untyped-def]
    engine: AsyncEngine, schema, monkeypatch
) -> None:
    # The contracts are built on first use (billing_contracts.config): a process that consumes builds
    # the parser at start, so its first message is not the one that pays ~60 ms for it; one that does
    # not consume (an api process) never builds it.
    order: list[str] = []
    monkeypatch.setattr(plumbing_module, "prepare_parser", lambda: order.append("prepared"))

    class Subscribing(Recording):
        async def subscribe(self, queue, binding_keys, handler) -> None:  # type: ignore[no-untyped-def]
            order.append(f"subscribed {queue}")

    async def handler(message: Message) -> None:
        return None

    without = _plumbing(engine, schema, Subscribing())
    async with _running(without, web.Application()):
        await asyncio.sleep(0.2)  # the relay's first pass found nothing
        assert order == []
    consuming = _plumbing(engine, schema, Subscribing())
    consuming.add_consumer("q", ["payments.#"], handler)
    async with _running(consuming, web.Application()):
        await asyncio.sleep(0.2)
        assert order == ["prepared", "subscribed q"]
