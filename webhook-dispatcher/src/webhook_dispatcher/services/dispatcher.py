"""The delivery worker: claims due deliveries with leases, makes one signed HTTP attempt each, records
it and schedules what comes next. Any number of workers may run against one database (WHK-3, WHK-4).

Modelled on Polar's ``webhook/tasks.py`` (one attempt per request, the log written after it), with the
outbox relay's lease pattern instead of a job queue: the database is the queue, so a crash anywhere
loses nothing and a dead worker's claim simply expires. Claims and records are batched: one
transaction leases many deliveries, one transaction records many attempts.

This module runs the claim loop (when to claim, how long to sleep) and wires the stages together; each
stage is a module of its own, none of which knows this one: ``claims`` (leasing), ``slots`` (what the
worker holds: queues, send slots, reservations for the ingest, hand-backs, the drain), ``sending`` (the
HTTP attempt), ``recording`` (outcomes, in batches), ``disabling`` (endpoints given up on) and
``backlog`` (the gauges).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import Counter, deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp
from billing_contracts.envelope import utcnow

from webhook_dispatcher.crypto import SecretBox
from webhook_dispatcher.metrics import WebhookMetrics
from webhook_dispatcher.services.attempts import AttemptResult, Claimed, Lease, Reservation
from webhook_dispatcher.services.backlog import watch_backlog
from webhook_dispatcher.services.claims import Claimer
from webhook_dispatcher.services.handbacks import HandBacks
from webhook_dispatcher.services.recording import Recorder
from webhook_dispatcher.services.sending import Sender
from webhook_dispatcher.services.slots import SendSlots
from webhook_dispatcher.services.uow import WebhooksUnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DispatchConfig:
    schedule: list[float]
    jitter: float
    max_retry_after: float
    request_timeout: float
    lease: timedelta
    per_endpoint: int
    concurrency: int
    poll_interval: float
    disable_after: timedelta
    excerpt_bytes: int
    # Deliveries leased per claim transaction, and attempts recorded per record transaction, at most.
    batch: int = 128
    # The longest sleep with nothing due soon: new deliveries wake the worker (in-process, NOTIFY), and
    # it sleeps until the earliest scheduled retry; this only bounds a lost wake-up.
    idle_interval: float = 30.0


class Dispatcher:
    """One per worker process. Three things run side by side:

    - the claim loop leases due deliveries in batches (``Claimer``), one transaction per batch, and
      queues them per endpoint (``SendSlots``, as the ingest's reservations do with what it leases);
    - sends (``Sender``) start from those queues, at most ``per_endpoint`` at a time per endpoint and
      ``concurrency`` in all (``SendSlots``);
    - outcomes are recorded in batches (``Recorder``, through a ``GroupCommit``), one transaction per
      batch.

    Per-endpoint cap across workers (WHK-8): a worker leases an endpoint's deliveries only while no
    other worker holds a live lease on any of them (checked with the endpoint row locked), so at any
    moment one worker owns an endpoint's traffic and enforces its cap locally.
    """

    def __init__(
        self,
        uow: Callable[[], WebhooksUnitOfWork],
        box: SecretBox,
        config: DispatchConfig,
        metrics: WebhookMetrics,
        client: Callable[[], aiohttp.ClientSession],
    ) -> None:
        self.uow = uow
        self.box = box
        self.config = config
        self.metrics = metrics
        self.client = client
        # Prefix of every claim token this instance takes: how it tells its own leases from another
        # worker's (tokens are 32 characters: this, then 20 random hex digits per claim).
        self.worker_id = secrets.token_hex(6)
        self._claims = Claimer(
            uow, box, metrics, worker_id=self.worker_id, lease=config.lease, per_endpoint=config.per_endpoint
        )
        self._sender = Sender(client, request_timeout=config.request_timeout, excerpt_bytes=config.excerpt_bytes)
        self._recorder = Recorder(
            uow,
            metrics,
            schedule=config.schedule,
            jitter=config.jitter,
            max_retry_after=config.max_retry_after,
            disable_after=config.disable_after,
            max_batch=config.batch,
        )
        self._wake = asyncio.Event()
        self._slots = SendSlots(
            self._sender,
            self._recorder,
            metrics,
            wake=self._wake.set,
            per_endpoint=config.per_endpoint,
            concurrency=config.concurrency,
            request_timeout=config.request_timeout,
            lease=config.lease,
            depth=self._claims.depth,
            refill_mark=self._claims.refill_mark,
        )
        # The claim loop's idle sleep while it lasts (``_idle``).
        self._sleep: asyncio.Timeout | None = None

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """The graceful stop (the plumbing calls it when the process starts draining): ``run`` claims
        nothing more and starts no attempt, lets every attempt in flight finish and be recorded (so no
        receiver gets a webhook whose success is not logged, which would be sent again), hands back the
        leases of what it never started and returns. Cancelled meanwhile (the grace period is over), it
        cancels the attempts left: their leases expire and another worker makes them again, with the
        same webhook-id (WHK-4)."""
        self._slots.stop()
        self._wake.set()

    @property
    def depth(self) -> int:
        """How many deliveries of one endpoint this worker leases ahead of sending them."""
        return self._claims.depth

    # -- the loop ---------------------------------------------------------------------------------

    async def run(self) -> None:
        backoff = self.config.poll_interval
        try:
            while not self._slots.stopping:
                # Cleared before claiming, so a wake-up that arrives meanwhile is not lost.
                self._wake.clear()
                room = min(self.config.batch, self._slots.room())
                claimed: list[Claimed] = []
                if room > 0:
                    # Endpoints being handed back are not claimed, and what a claim leased of one
                    # handed back meanwhile goes back too (``HandBacks``): order is kept.
                    handbacks = self._slots.handbacks
                    mark = handbacks.open()
                    try:
                        claimed = await self.claim(room, held=self._slots.held, skip=handbacks.running())
                    except Exception:
                        log.warning("claiming deliveries failed; retrying in %.1fs", backoff, exc_info=True)
                        failed = True
                    else:
                        failed = False
                        self._slots.accept(claimed, mark)
                    finally:
                        handbacks.close(mark)
                    if failed:
                        await asyncio.sleep(backoff)
                        backoff = min(backoff * 2, 30.0)
                        continue
                    backoff = self.config.poll_interval
                if not claimed:
                    await self._idle()
        finally:
            await self._slots.drain()

    async def _idle(self) -> None:
        """Sleep until woken or ``_idle_seconds`` have passed; shortened to ``poll_interval`` when
        deliveries leased at ingest arrive meanwhile (``take``), as if the loop had claimed them."""
        seconds = await self._idle_seconds()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds) as sleep:
                self._sleep = sleep
                await self._wake.wait()
        self._sleep = None

    async def _idle_seconds(self) -> float:
        """How long to sleep after a claim that found nothing: until the earliest scheduled retry (at
        most ``idle_interval``); ``poll_interval`` while something is due that could not be claimed
        (leased, or its endpoint held by a worker), as before. While this worker holds deliveries it
        polls as before, asking nothing: their completions wake it, and under load an empty claim is
        frequent, so the query would cost a statement each time."""
        if self._slots.held:
            return self.config.poll_interval
        try:
            due = await self._claims.next_due()
        except Exception:
            return self.config.poll_interval
        if due is None:
            return self.config.idle_interval
        wait = (due - utcnow()).total_seconds()
        return self.config.poll_interval if wait <= 0 else min(wait + 0.005, self.config.idle_interval)

    # -- deliveries leased as they are stored (``Intake``: the event consumer of this process) ----

    def new_lease(self) -> tuple[Lease, datetime, datetime]:
        return self._claims.new_lease()

    def reserve(self, wanted: Mapping[str, int]) -> Reservation:
        """Room for new deliveries, counted as held at once (see ``SendSlots.reserve``)."""
        return self._slots.reserve(wanted)

    def take(self, reservation: Reservation, claimed: list[Claimed]) -> None:
        """Queue deliveries leased within the reservation (see ``SendSlots.take``)."""
        self._slots.take(reservation, claimed)
        # While it holds deliveries the loop polls every ``poll_interval`` (``_idle_seconds``): what
        # becomes due meanwhile without a wake (a lease handed back, an ``endpoint.disabled`` notice)
        # is claimed then. A sleep begun with nothing held is cut to that.
        sleep = self._sleep
        if sleep is not None:
            soon = asyncio.get_running_loop().time() + self.config.poll_interval
            when = sleep.when()
            if when is None or when > soon:
                sleep.reschedule(soon)

    def settle(self, reservation: Reservation, used: Mapping[str, int]) -> None:
        """The reservation is over: room granted and not ``used`` is given back (``SendSlots.settle``)."""
        self._slots.settle(reservation, used)

    # -- the stages, as the app, the claim loop (``claim``) and the tests call them -----------------

    async def claim(
        self, limit: int, *, held: Mapping[str, int] | None = None, skip: Collection[str] = ()
    ) -> list[Claimed]:
        """Lease up to ``limit`` due deliveries (see ``Claimer.claim``)."""
        return await self._claims.claim(limit, held=held, skip=skip)

    async def send(self, item: Claimed) -> AttemptResult:
        """Make the delivery's one HTTP attempt (see ``Sender.send``)."""
        return await self._sender.send(item)

    async def record(self, item: Claimed, result: AttemptResult) -> str | None:
        """Record one attempt (see ``record_batch``)."""
        return (await self.record_batch([(item, result)]))[0]

    async def record_batch(self, entries: list[tuple[Claimed, AttemptResult | None]]) -> list[str | None]:
        """Record attempts, or hand leases back, in one transaction (see ``Recorder.record_batch``)."""
        return await self._recorder.record_batch(entries)

    async def watch_backlog(self, interval: float = 5.0) -> None:
        await watch_backlog(self.uow, self.metrics, interval)

    # -- the worker's bookkeeping (``SendSlots``), under the names the delivery tests look at it by ----

    @property
    def _queues(self) -> dict[str, deque[Claimed]]:
        return self._slots.queues

    @property
    def _sending(self) -> Counter[str]:
        return self._slots.sending

    @property
    def _held(self) -> Counter[str]:
        return self._slots.held

    @property
    def _tasks(self) -> set[asyncio.Task[None]]:
        return self._slots.tasks

    @property
    def _handbacks(self) -> HandBacks:
        return self._slots.handbacks

    def _accept(self, claimed: list[Claimed], mark: int | None = None) -> None:
        """Queue what a claim made outside the loop leased (see ``SendSlots.accept``)."""
        self._slots.accept(claimed, mark)
