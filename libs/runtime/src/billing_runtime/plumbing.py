"""The per-process plumbing of a service: engine, bus, outbox relay, consumers and background tasks,
opened and closed by one aiohttp cleanup context so nothing lives at module level.

Its graceful stop (``billing_runtime.shutdown``; docs/INTERNAL.md "Graceful shutdown"): when the process
starts draining (and the pre-drain delay is over) the consumers are cancelled and the background tasks
that have a ``stop`` are told to finish what they hold, while in-flight requests finish; then, in the
cleanup, the other background loops are cancelled (each is cancel-safe: a pass is one transaction, or
leased work that another process takes over), the relay publishes what is committed until the outbox is
empty or the deadline comes, and the broker and the database pool are closed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from aiohttp import web
from billing_contracts.envelope import utcnow
from opentelemetry.trace import SpanKind
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from billing_runtime import tracing
from billing_runtime.bus import Bus, Handler, MemoryBus, Message, create_bus
from billing_runtime.consuming import prepare_parser
from billing_runtime.db import create_engine, make_sessionmaker, ping
from billing_runtime.heartbeats import Heartbeat
from billing_runtime.log_context import bind, unbind
from billing_runtime.metrics import Metrics
from billing_runtime.outbox import Notifier, OutboxRelay, listen_for_notifications
from billing_runtime.outbox_dead_letters import outbox_dead_letter_stats
from billing_runtime.shutdown import Shutdown, shutdown_of
from billing_runtime.task_runs import TaskRuns

log = logging.getLogger(__name__)

# The longest a stop waits for a cancelled background task to end.
STOP_BOUND = 5.0


@dataclass
class _Consumer:
    queue: str
    binding_keys: list[str]
    handler: Handler


@dataclass
class _Task:
    name: str
    factory: Callable[[], Awaitable[None]]
    # Asks the task to finish what it holds and return; None: it is cancelled instead.
    stop: Callable[[], None] | None


@dataclass
class Plumbing:
    """Build it in ``create_app``; register consumers and tasks; then ``app.cleanup_ctx.append(p.ctx)``.

    ``engine``/``bus`` may be given (tests, embedded mode with one shared in-process bus); what is
    given is not closed here, what is created here is.
    """

    service: str
    database_url: str
    metrics: Metrics
    pool_size: int = 20
    bus_url: str = "memory://"
    outbox: Table | None = None
    run_relay: bool = True
    # Whether the relay listens for other processes' NOTIFYs (PostgreSQL): only worth a connection when
    # processes without a relay of their own (API roles) write to this outbox.
    relay_listens: bool = True
    poll_interval: float = 10.0
    # How often the dead-letter, paused-consumer and outbox-backlog gauges are refreshed (a scrape
    # interval: each refresh costs the broker and the database a few statements).
    watch_interval: float = 15.0
    engine: AsyncEngine | None = None
    bus: Bus | None = None
    # The service's ``worker_heartbeats`` table (``billing_runtime.heartbeats``): None, no heartbeat.
    heartbeats: Table | None = None
    # What this process is (``api``, ``worker``, ``api+worker``), as its heartbeat tells it.
    role: str = "api+worker"
    heartbeat_interval: float = 10.0
    # The last pass of each loop that tracks its passes (``runs.track(name)``), for the heartbeat.
    runs: TaskRuns = field(default_factory=TaskRuns, init=False)
    # When the oldest dead letter of each consumed queue died, as the gauges last read it.
    dead_letters_oldest: dict[str, datetime] = field(default_factory=dict, init=False)
    heartbeat: Heartbeat | None = field(default=None, init=False)
    _owns_engine: bool = field(default=False, init=False)
    _owns_bus: bool = field(default=False, init=False)
    _consumers: list[_Consumer] = field(default_factory=list, init=False)
    _tasks: list[_Task] = field(default_factory=list, init=False)
    # More to wake when another process NOTIFYs on the outbox channel (a worker's loops that act on
    # what an API process wrote, beside the relay).
    _woken: list[Callable[[], None]] = field(default_factory=list, init=False)
    _stopping: asyncio.Task[None] | None = field(default=None, init=False)
    relay: OutboxRelay | None = field(default=None, init=False)
    notifier: Notifier | None = field(default=None, init=False)
    sessionmaker: async_sessionmaker[AsyncSession] | None = field(default=None, init=False)

    @property
    def notify_channel(self) -> str:
        return f"outbox_{self.service.replace('-', '_')}"

    def add_consumer(self, queue: str, binding_keys: list[str], handler: Handler) -> None:
        self._consumers.append(_Consumer(queue, binding_keys, observed(queue, handler)))

    def add_task(
        self, name: str, factory: Callable[[], Awaitable[None]], *, stop: Callable[[], None] | None = None
    ) -> None:
        """A background loop started after the engine and bus are open, stopped before they close.

        Without ``stop`` it is cancelled when the process stops, so it must be cancel-safe. With one,
        ``stop()`` is called when the process starts draining and the loop must then finish what it
        holds (in-flight webhook deliveries, leased callbacks) and return; it is cancelled only if it
        is still running at the deadline."""
        self._tasks.append(_Task(name, factory, stop))

    def wake_on_notify(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` too whenever the relay is woken by another process's NOTIFY (``after_commit``
        of an API process, or its explicit ``notify_workers``): a worker loop that serves what the API
        writes then needs no short poll of its own."""
        self._woken.append(callback)

    def notify_workers(self) -> None:
        """From a process without a relay (an API process): wake the workers' relays and every loop
        they registered with ``wake_on_notify``. A no-op where no notifier runs."""
        if self.notifier is not None:
            self.notifier.request()

    def _notified(self) -> None:
        assert self.relay is not None
        self.relay.wake()
        for callback in self._woken:
            callback()

    def after_commit(self) -> None:
        """Called by a UoW whose commit wrote events: wake this process's relay or, in a process that
        runs none (an API process), on PostgreSQL, the relays of other processes. Any one relay
        publishes every row, so a process with its own sends no NOTIFY (one statement and a wake-up of
        every listener saved per burst of commits)."""
        if self.relay is not None:
            self.relay.wake()
        elif self.notifier is not None:
            self.notifier.request()

    async def check_database(self) -> None:
        assert self.engine is not None
        await ping(self.engine)

    async def check_bus(self) -> None:
        assert self.bus is not None
        await self.bus.check()

    def open_engine(self) -> AsyncEngine:
        if self.engine is None:
            self.engine = create_engine(self.database_url, pool_size=self.pool_size)
            self._owns_engine = True
        self.sessionmaker = make_sessionmaker(self.engine)
        return self.engine

    async def ctx(self, app: web.Application) -> AsyncIterator[None]:
        shutdown = shutdown_of(app)
        self._stopping = None
        engine = self.open_engine()
        needs_bus = (self.outbox is not None and self.run_relay) or bool(self._consumers)
        if needs_bus and self.bus is None:
            self.bus = create_bus(self.bus_url)
            self._owns_bus = True
            await self.bus.start()
        tasks: list[asyncio.Task[None]] = []
        stoppable: list[asyncio.Task[None]] = []
        relay_task: asyncio.Task[None] | None = None
        closers: list[Callable[[], object]] = []
        watcher: asyncio.Task[None] | None = None
        if isinstance(self.bus, MemoryBus) and self.outbox is not None and self.run_relay:
            self.bus.outboxes[self.service] = (engine, self.outbox)
        try:
            if self.outbox is not None and not self.run_relay:
                self.notifier = Notifier(self.database_url, self.notify_channel)
                tasks.append(
                    asyncio.create_task(self._guard("notifier", self.notifier.run), name=f"{self.service}:notify")
                )
            if self.outbox is not None and self.run_relay:
                assert self.bus is not None
                self.relay = OutboxRelay(
                    engine,
                    self.outbox,
                    self.bus,
                    poll_interval=self.poll_interval,
                    on_published=self.metrics.outbox_published.inc,
                )
                if self.relay_listens:
                    closers.append(
                        await listen_for_notifications(self.database_url, self.notify_channel, self._notified)
                    )
                relay_task = asyncio.create_task(self.relay.run(), name=f"{self.service}:relay")
                tasks.append(asyncio.create_task(self._watch_backlog(), name=f"{self.service}:backlog"))
            if self._consumers:
                prepare_parser()
            for consumer in self._consumers:
                assert self.bus is not None
                await self.bus.subscribe(consumer.queue, consumer.binding_keys, consumer.handler)
            if self.bus is not None and (self._consumers or (self.outbox is not None and self.run_relay)):
                tasks.append(asyncio.create_task(self._watch_queues(), name=f"{self.service}:dead-letters"))
            for task in self._tasks:
                running = asyncio.create_task(self._guard(task.name, task.factory), name=f"{self.service}:{task.name}")
                (stoppable if task.stop is not None else tasks).append(running)
            if self.heartbeats is not None:
                # Started last: its first beat then carries the first passes the loops just began.
                self.heartbeat = Heartbeat(
                    engine, self.heartbeats, role=self.role, interval=self.heartbeat_interval, details=self.details
                )
                tasks.append(asyncio.create_task(self.heartbeat.run(), name=f"{self.service}:heartbeat"))
            watcher = asyncio.create_task(self._stop_when_draining(shutdown), name=f"{self.service}:stop")
            yield
        finally:
            # In-flight requests are done (aiohttp ran them to the end before the cleanup contexts).
            shutdown.begin()  # a no-op under ``serve``; starts the clock for an app run otherwise
            if watcher is not None and self._stopping is None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            await self._stop_work(shutdown)
            if watcher is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            # The loops that finish what they hold get until the deadline; the others stop now.
            await _stop_tasks(tasks, within=0)
            await _stop_tasks(stoppable, within=shutdown.remaining())
            if relay_task is not None:
                await _stop_tasks([relay_task], within=0)
            if self.relay is not None:
                await self._drain_outbox(shutdown)
            for close in closers:
                with contextlib.suppress(Exception):
                    result = close()
                    if asyncio.iscoroutine(result):
                        await result
            if self.heartbeat is not None:
                await self.heartbeat.remove()
            if self._owns_bus and self.bus is not None:
                await self.bus.close()
            if self._owns_engine:
                await engine.dispose()

    async def _stop_when_draining(self, shutdown: Shutdown) -> None:
        """Under ``serve``: once the listeners close (the pre-drain delay over), stop taking messages
        and tell the stoppable loops, while the in-flight requests finish."""
        await shutdown.draining.wait()
        await asyncio.sleep(shutdown.delay)
        await self._stop_work(shutdown)

    async def _stop_work(self, shutdown: Shutdown) -> None:
        """Once: cancel the consumers and wait for their in-flight handlers (their effects and outbox
        rows committed, the messages acked), and ask the stoppable loops to finish."""
        if self._stopping is None:
            self._stopping = asyncio.create_task(self._stop_once(shutdown), name=f"{self.service}:stopping")
        await asyncio.shield(self._stopping)

    async def _stop_once(self, shutdown: Shutdown) -> None:
        for task in self._tasks:
            if task.stop is not None:
                task.stop()
        if self._consumers and self.bus is not None:
            try:
                await self.bus.stop_consuming(shutdown.remaining())
            except Exception:
                log.exception(
                    "%s: stopping the consumers failed; closing the channels returns their messages", self.service
                )

    async def _drain_outbox(self, shutdown: Shutdown) -> None:
        """Publish what is committed, pass after pass, until the outbox is empty or the deadline; what is
        left (the broker away, the time spent) stays in the outbox for the next process's relay."""
        assert self.relay is not None
        published = 0
        try:
            async with asyncio.timeout(shutdown.remaining()):
                while True:
                    count = await self.relay.run_once()
                    published += count
                    if count == 0:
                        break
        except TimeoutError:
            log.warning("%s: the outbox was not empty at the deadline; its relays publish the rest", self.service)
        except Exception as exc:
            log.warning("%s: the final outbox pass failed (%s); its relays publish the rest", self.service, exc)
        if published:
            log.info("%s: published %d events from the outbox while stopping", self.service, published)

    async def _guard(self, name: str, factory: Callable[[], Awaitable[None]]) -> None:
        # A background loop that crashes is restarted after a pause rather than dying silently.
        while True:
            try:
                await factory()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s background task %s crashed; restarting in 1s", self.service, name)
                await asyncio.sleep(1)

    async def _watch_backlog(self) -> None:
        assert self.relay is not None
        while True:
            with contextlib.suppress(Exception):
                count, oldest_age = await self.relay.backlog_stats()
                self.metrics.outbox_backlog.set(count)
                self.metrics.outbox_oldest_age.set(oldest_age)
            await asyncio.sleep(self.watch_interval)

    def details(self) -> dict[str, object]:
        """What this process's heartbeat carries (``billing_runtime.heartbeats``)."""
        return {
            "queues": self.queues,
            "tasks": self.runs.as_json(),
            "dead_letters": {queue: oldest.isoformat() for queue, oldest in self.dead_letters_oldest.items()},
        }

    @property
    def queues(self) -> list[str]:
        """The queues this process consumes."""
        return list(dict.fromkeys(c.queue for c in self._consumers))

    async def _watch_queues(self) -> None:
        """Export, per queue, its dead letters (depth, oldest age) and whether its consumer is paused by
        an outage. Distributed: the broker's ``<queue>.dlq`` of every queue this process consumes.
        Embedded: the rows this service's outbox keeps marked, by the queue that gave up on them."""
        seen: set[str] = set()
        while True:
            with contextlib.suppress(Exception):
                stats = await self._dead_letter_stats()
                for queue in seen - stats.keys():
                    stats[queue] = (0, 0.0)
                for queue, (depth, age) in stats.items():
                    self.metrics.dead_letters.labels(queue).set(depth)
                    self.metrics.dead_letters_oldest_age.labels(queue).set(age)
                seen |= stats.keys()
            if self.bus is not None:
                paused = self.bus.paused()
                for queue in self.queues:
                    self.metrics.consumer_paused.labels(queue).set(1 if queue in paused else 0)
                    with contextlib.suppress(Exception):
                        ready = await self.bus.queue_depth(queue)
                        if ready is not None:
                            self.metrics.queue_ready.labels(queue).set(ready)
            await asyncio.sleep(self.watch_interval)

    async def _dead_letter_stats(self) -> dict[str, tuple[int, float]]:
        now = utcnow()
        found: dict[str, tuple[int, float]] = {}
        assert self.bus is not None
        for queue in self.queues:
            stats = await self.bus.dead_letter_stats(queue)
            if stats is not None:
                if stats.depth > 0 and stats.oldest is not None:
                    self.dead_letters_oldest[queue] = stats.oldest
                else:
                    self.dead_letters_oldest.pop(queue, None)
                age = (now - stats.oldest).total_seconds() if stats.oldest is not None else 0.0
                found[queue] = (stats.depth, max(age, 0.0))
        if isinstance(self.bus, MemoryBus) and self.outbox is not None and self.engine is not None:
            for queue, (count, oldest) in (await outbox_dead_letter_stats(self.engine, self.outbox)).items():
                found[queue] = (count, max((now - oldest).total_seconds(), 0.0))
        return found


async def _stop_tasks(tasks: list[asyncio.Task[None]], *, within: float) -> None:
    """Wait up to ``within`` seconds for the tasks to end, then cancel the rest and wait for them, at
    most ``STOP_BOUND`` seconds: a task that does not end on its cancellation (an await in its cleanup
    that is never answered) is left behind with a warning rather than holding the whole stop."""
    if not tasks:
        return
    if within > 0:
        await asyncio.wait(tasks, timeout=within)
    for task in tasks:
        task.cancel()
    _, stuck = await asyncio.wait(tasks, timeout=STOP_BOUND)
    for task in tasks:
        if task in stuck:
            log.warning("%s did not end %.0fs after its cancellation; going on without it", task.get_name(), STOP_BOUND)
            continue
        with contextlib.suppress(asyncio.CancelledError):
            task.result()


def observed(queue: str, handler: Handler) -> Handler:
    """``handler`` run as a consumer span that continues the trace the message carries (its
    ``traceparent`` header: the request or message that caused the event), with the event id and the
    queue in the log context; ``parse_or_drop`` adds the tenant and payment once the event is read."""

    async def handle(message: Message) -> None:
        with tracing.span(f"consume {queue}", parent=tracing.extract(message.headers), kind=SpanKind.CONSUMER):
            token = bind(event_id=message.message_id, queue=queue)
            try:
                await handler(message)
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("consumed %s (%s)", message.message_id, message.routing_key)
            finally:
                unbind(token)

    return handle
