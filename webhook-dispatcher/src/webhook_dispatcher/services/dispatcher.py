"""The delivery worker: claims due deliveries with leases, makes one signed HTTP attempt each, records
it and schedules what comes next. Any number of workers may run against one database (WHK-3, WHK-4).

Modelled on Polar's ``webhook/tasks.py`` (one attempt per request, the log written after it), with the
outbox relay's lease pattern instead of a job queue: the database is the queue, so a crash anywhere
loses nothing and a dead worker's claim simply expires. Claims and records are batched: one
transaction leases many deliveries, one transaction records many attempts.

This module runs the loop and holds the worker's state in memory (what is queued, in flight and held
per endpoint); each stage is a module of its own, none of which knows this one: ``claims`` (leasing),
``sending`` (the HTTP attempt), ``recording`` (outcomes, in batches), ``disabling`` (endpoints given
up on) and ``backlog`` (the gauges).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
import time
from collections import Counter, deque
from collections.abc import Callable, Collection, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

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
from webhook_dispatcher.services.uow import WebhooksUnitOfWork

log = logging.getLogger(__name__)

# Deliveries a worker holds leased (queued, in flight or being recorded) per unit of its concurrency.
HELD_PER_SLOT = 4
# How long after a lease's deadline a delivery that could not be handed back counts as expired.
LEASE_EXPIRY_MARGIN = 0.5


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


class _Slot:
    """One of an endpoint's sending slots, taken by an attempt and freed once: when its request is over,
    or, for an attempt cancelled before its first step, when its task ends."""

    __slots__ = ("endpoint_id", "taken")

    def __init__(self, endpoint_id: str) -> None:
        self.endpoint_id = endpoint_id
        self.taken = True


class Dispatcher:
    """One per worker process. Three things run side by side:

    - the claim loop leases due deliveries in batches (``Claimer``), one transaction per batch, and
      queues them per endpoint;
    - sends (``Sender``) start from those queues, at most ``per_endpoint`` at a time per endpoint and
      ``concurrency`` in all;
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
        # Leased and not yet started, per endpoint, in claim order (next_attempt_at, id).
        self._queues: dict[str, deque[Claimed]] = {}
        self._sending: Counter[str] = Counter()
        # Leased by this instance and not yet recorded or released, per endpoint.
        self._held: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        # Set by ``stop``: claim nothing more, start no attempt, finish the ones in flight.
        self._stopping = False
        # Set while ``_drain`` runs (``run`` ended): no attempt starts, no room is reserved.
        self._draining = False
        # The claim loop's idle sleep while it lasts (``_idle``).
        self._sleep: asyncio.Timeout | None = None
        self._handbacks = HandBacks()
        # Ingests' reservations not yet settled: the drain waits for them (what they lease goes back).
        self._reservations = 0
        self._settled = asyncio.Event()
        self._settled.set()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """The graceful stop (the plumbing calls it when the process starts draining): ``run`` claims
        nothing more and starts no attempt, lets every attempt in flight finish and be recorded (so no
        receiver gets a webhook whose success is not logged, which would be sent again), hands back the
        leases of what it never started and returns. Cancelled meanwhile (the grace period is over), it
        cancels the attempts left: their leases expire and another worker makes them again, with the
        same webhook-id (WHK-4)."""
        self._stopping = True
        self._wake.set()

    @property
    def depth(self) -> int:
        """How many deliveries of one endpoint this worker leases ahead of sending them."""
        return self._claims.depth

    @property
    def _max_held(self) -> int:
        return self.config.concurrency * HELD_PER_SLOT

    @property
    def _min_lease_left(self) -> float:
        # An attempt starts only if its lease outlives the request by a margin, so no other worker
        # can take the delivery over while the request is in flight (WHK-3).
        return self.config.request_timeout + min(
            1.0, (self.config.lease.total_seconds() - self.config.request_timeout) / 2
        )

    # -- the loop ---------------------------------------------------------------------------------

    async def run(self) -> None:
        backoff = self.config.poll_interval
        try:
            while not self._stopping:
                # Cleared before claiming, so a wake-up that arrives meanwhile is not lost.
                self._wake.clear()
                room = min(self.config.batch, self._max_held - sum(self._held.values()))
                claimed: list[Claimed] = []
                if room > 0:
                    # Endpoints being handed back are not claimed, and what a claim leased of one
                    # handed back meanwhile goes back too (``HandBacks``): order is kept.
                    mark = self._handbacks.open()
                    try:
                        claimed = await self.claim(room, held=self._held, skip=self._handbacks.running())
                    except Exception:
                        log.warning("claiming deliveries failed; retrying in %.1fs", backoff, exc_info=True)
                        failed = True
                    else:
                        failed = False
                        self._accept(claimed, mark)
                    finally:
                        self._handbacks.close(mark)
                    if failed:
                        await asyncio.sleep(backoff)
                        backoff = min(backoff * 2, 30.0)
                        continue
                    backoff = self.config.poll_interval
                if not claimed:
                    await self._idle()
        finally:
            await self._drain()

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
        if self._held:
            return self.config.poll_interval
        try:
            due = await self._claims.next_due()
        except Exception:
            return self.config.poll_interval
        if due is None:
            return self.config.idle_interval
        wait = (due - utcnow()).total_seconds()
        return self.config.poll_interval if wait <= 0 else min(wait + 0.005, self.config.idle_interval)

    def _accept(self, claimed: list[Claimed], mark: int | None = None) -> None:
        """Queue what a claim leased under ``mark`` (None: now, as for a claim made outside the loop)."""
        mark = self._handbacks.mark() if mark is None else mark
        for item in claimed:
            self._held[item.endpoint_id] += 1
        self._queue(claimed, mark)

    def _queue(self, items: list[Claimed], mark: int) -> None:
        """Queue leased deliveries (counted as held), but hand back those that would overtake
        deliveries of their endpoint handed back since ``mark`` (``HandBacks``): the next claim takes
        them again after the older ones."""
        back: dict[str, list[Claimed]] = {}
        for item in items:
            # Stopping, everything queued goes back with the drain (``_drain``), in one batch.
            if not self._stopping and self._handbacks.overtakes(item.endpoint_id, mark):
                back.setdefault(item.endpoint_id, []).append(item)
            else:
                self._queues.setdefault(item.endpoint_id, deque()).append(item)
        for endpoint_id, overtaking in back.items():
            self._hand_back(endpoint_id, overtaking)
        self._pump()

    def _hand_back(self, endpoint_id: str, items: list[Claimed]) -> None:
        self._handbacks.begin(endpoint_id)
        # A callback, not the coroutine's ``finally``: it runs even for a task cancelled before its first step.
        self._spawn(
            self._release(items),
            f"webhook-release:{endpoint_id}",
            then=functools.partial(self._released, endpoint_id, items),
        )

    def _pump(self) -> None:
        """Start every attempt the caps allow, endpoints taken round-robin."""
        if self._stopping or self._draining:
            return
        for endpoint_id in list(self._queues):
            queue = self._queues.pop(endpoint_id)
            while (
                queue
                and self._sending[endpoint_id] < self.config.per_endpoint
                and self._sending.total() < self.config.concurrency
            ):
                if queue[0].lease_deadline - time.monotonic() < self._min_lease_left:
                    # Waited too long behind slow requests: hand the rest back, in order, rather than
                    # send it on a lease that could expire mid-request.
                    self._hand_back(endpoint_id, list(queue))
                    queue.clear()
                    break
                item = queue.popleft()
                self._sending[endpoint_id] += 1
                slot = _Slot(endpoint_id)
                # The bookkeeping in a done callback: it runs even for a task cancelled before its first step.
                self._spawn(
                    self._attempt_safely(item, slot),
                    f"webhook:{item.delivery_id}",
                    then=functools.partial(self._attempt_ended, item, slot),
                )
            if queue:
                # Re-inserted at the end: the next pump serves the other endpoints first.
                self._queues[endpoint_id] = queue
        self.metrics.in_flight.set(self._sending.total())

    def _spawn(
        self, coro: Coroutine[Any, Any, Any], name: str, then: Callable[[asyncio.Task[Any]], None] | None = None
    ) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if then is not None:
            task.add_done_callback(then)

    def _done_with(self, item: Claimed) -> None:
        self._unhold(item.endpoint_id, 1)

    def _unhold(self, endpoint_id: str, count: int) -> None:
        before = self._held[endpoint_id]
        self._held[endpoint_id] -= count
        if self._held[endpoint_id] <= 0:
            del self._held[endpoint_id]
        # Wake the claim loop only when this made room it was waiting for: the endpoint fell below its
        # top-up mark, or this worker had reached its overall limit. Not on every completion, which
        # would cost a claim transaction per attempt.
        after = before - count
        if after < self._claims.refill_mark <= before or sum(self._held.values()) + count >= self._max_held:
            self._wake.set()

    # -- deliveries leased as they are stored (``Intake``: the event consumer of this process) ----

    def reserve(self, wanted: Mapping[str, int]) -> Reservation:
        """Room for new deliveries, within the same bounds a claim keeps (``depth`` per endpoint,
        ``_max_held`` in all); counted as held at once, so a claim meanwhile cannot overfill an
        endpoint (it reads the counts under the endpoint's lock). ``_max_held`` is softer: a claim in
        flight sized its batch before this grant, so the two may pass it by up to a batch."""
        if self._stopping or self._draining or self.config.concurrency <= 0:
            return Reservation({})
        room = self._max_held - sum(self._held.values())
        busy = set(self._handbacks.running())
        granted: dict[str, int] = {}
        for endpoint_id, count in wanted.items():
            grant = 0 if endpoint_id in busy else min(count, self.depth - self._held[endpoint_id], room)
            if grant > 0:
                granted[endpoint_id] = grant
                self._held[endpoint_id] += grant
                room -= grant
        if not granted:
            return Reservation({})
        self._reservations += 1
        self._settled.clear()
        return Reservation(granted, self._handbacks.open())

    def take(self, reservation: Reservation, claimed: list[Claimed]) -> None:
        """Queue deliveries leased within the reservation (already counted as held). Stopping
        meanwhile, they stay queued and ``_drain`` hands them back (it waits for every reservation to
        settle); after it, their leases expire (WHK-4)."""
        self._queue(claimed, reservation.mark)
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
        if not reservation.granted:
            return
        for endpoint_id, count in reservation.granted.items():
            if count > used.get(endpoint_id, 0):
                self._unhold(endpoint_id, count - used.get(endpoint_id, 0))
        self._handbacks.close(reservation.mark)
        self._reservations -= 1
        if self._reservations <= 0:
            self._settled.set()

    def new_lease(self) -> tuple[Lease, datetime, datetime]:
        return self._claims.new_lease()

    async def _drain(self) -> None:
        """When ``run`` ends: let in-flight attempts finish (all of them after ``stop``; briefly when the
        loop was cancelled without one) and hand back what was never started; the rest are cancelled
        and their leases expire, so another worker makes them again with the same webhook-id (WHK-4)."""
        # Nothing starts and nothing is reserved while it drains, stopped or not: attempts finishing
        # meanwhile would otherwise start what an ingest queued, as tasks this drain never awaits. Reset
        # after, as a loop that crashed is started again (the plumbing's guard).
        self._draining = True
        try:
            await self._finish_and_hand_back()
        finally:
            self._draining = False

    async def _finish_and_hand_back(self) -> None:
        queued = [item for queue in self._queues.values() for item in queue]
        self._queues.clear()
        try:
            if self._tasks:
                if self._stopping:
                    log.info("stopping: waiting for %d webhook attempts in flight", len(self._tasks))
                limit = None if self._stopping else min(5.0, self.config.request_timeout)
                await asyncio.wait(set(self._tasks), timeout=limit)
            # An ingest that reserved room before the stop hands its deliveries over when it commits
            # (``take``): they are queued, never started, and go back with the rest. Bounded: one that
            # has not settled by then leaves its leases to expire (WHK-4).
            if not self._settled.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._settled.wait(), min(5.0, self.config.request_timeout))
        finally:
            for task in list(self._tasks):
                task.cancel()
            for task in list(self._tasks):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        queued += [item for queue in self._queues.values() for item in queue]
        self._queues.clear()
        if queued:
            try:
                with contextlib.suppress(Exception):
                    await self.record_batch([(item, None) for item in queued])
            finally:
                for item in queued:
                    self._done_with(item)

    async def _attempt_safely(self, item: Claimed, slot: _Slot) -> None:
        try:
            try:
                result = await self.send(item)
            finally:
                # Free as soon as the request is over, not after its record: the next attempt may start.
                self._free(slot)
            await self._record(item, result)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The claim stays until its lease expires; then the attempt is made again.
            log.exception("attempt of delivery %s crashed", item.delivery_id)

    def _attempt_ended(self, item: Claimed, slot: _Slot, _task: asyncio.Task[None]) -> None:
        try:
            self._free(slot)  # a no-op unless the task was cancelled before it sent anything
        finally:
            self._done_with(item)

    def _free(self, slot: _Slot) -> None:
        if not slot.taken:
            return
        slot.taken = False
        self._sending[slot.endpoint_id] -= 1
        if self._sending[slot.endpoint_id] <= 0:
            del self._sending[slot.endpoint_id]
        self._pump()

    async def _release(self, items: list[Claimed]) -> list[Claimed]:
        """Hand the leases back; returns those that could not be (still leased to this worker until
        they expire)."""
        outcomes = await asyncio.gather(*(self._recorder.submit(item, None) for item in items), return_exceptions=True)
        failed = [item for item, outcome in zip(items, outcomes, strict=True) if isinstance(outcome, BaseException)]
        if failed:
            error = next(o for o in outcomes if isinstance(o, BaseException))
            log.warning(
                "handing back %d of %d leased deliveries failed; their leases expire",
                len(failed),
                len(items),
                exc_info=error,
            )
        return failed

    def _released(self, endpoint_id: str, items: list[Claimed], task: asyncio.Task[list[Claimed]]) -> None:
        for item in items:
            self._done_with(item)
        # Cancelled (a drain) or crashed: none of them is known to be handed back.
        failed = items if task.cancelled() or task.exception() is not None else task.result()
        if failed and not self._stopping:
            # Still leased to this worker: nothing newer of the endpoint may be leased ahead of them,
            # so it stays marked until they expire and a claim can take them again, oldest first.
            left = max(item.lease_deadline for item in failed) - time.monotonic() + LEASE_EXPIRY_MARGIN
            asyncio.get_running_loop().call_later(max(0.0, left), self._handbacks.end, endpoint_id)
        else:
            self._handbacks.end(endpoint_id)

    async def _record(self, item: Claimed, result: AttemptResult) -> None:
        self.metrics.attempt_latency.observe(result.latency)
        if result.refused:
            self.metrics.refused.inc()
        try:
            outcome = await self._recorder.submit(item, result)
        except Exception:
            # Whatever the receiver sent must never make an attempt unrecordable: that would leave the
            # claim to expire and the delivery to be re-sent forever without a log (WHK-3, WHK-4).
            log.exception("recording the attempt of %s failed; recording it as an error", item.delivery_id)
            fallback = AttemptResult(
                started_at=result.started_at,
                latency=result.latency,
                status=None,
                error="the receiver's response could not be recorded",
            )
            outcome = await self._recorder.submit(item, fallback)
        if outcome is not None:
            self.metrics.deliveries.labels(outcome).inc()
        if outcome == "retrying":
            # A retry is scheduled: the claim loop, which may be sleeping past it, sets its alarm again.
            self._wake.set()

    # -- the stages, as the app, the loop above and the tests call them -----------------------------

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
