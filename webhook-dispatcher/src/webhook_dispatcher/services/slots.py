"""What a worker does with the deliveries it holds leased, from the lease to the record: queues them per
endpoint, starts their attempts within the caps (a send slot each), reserves room for what the ingest
leases (``reserve``/``take``/``settle``), hands back what it cannot start in time, keeping its place
(WHK-12), and, when the claim loop ends, drains (WHK-4).

All of it is one worker's bookkeeping in memory, kept by its ``Dispatcher``, which decides when to claim;
the database is reached only through the ``Sender`` and ``Recorder`` this is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Coroutine, Mapping
from datetime import timedelta
from typing import Any

from webhook_dispatcher.metrics import WebhookMetrics
from webhook_dispatcher.services.attempts import AttemptResult, Claimed, Reservation
from webhook_dispatcher.services.handbacks import HandBacks
from webhook_dispatcher.services.recording import Recorder
from webhook_dispatcher.services.sending import Sender

log = logging.getLogger(__name__)

# Deliveries a worker holds leased (queued, in flight or being recorded) per unit of its concurrency.
HELD_PER_SLOT = 4
# How long after a lease's deadline a delivery that could not be handed back counts as expired.
LEASE_EXPIRY_MARGIN = 0.5


class _Slot:
    """One of an endpoint's sending slots, taken by an attempt and freed once: when its request is over,
    or, for an attempt cancelled before its first step, when its task ends."""

    __slots__ = ("endpoint_id", "taken")

    def __init__(self, endpoint_id: str) -> None:
        self.endpoint_id = endpoint_id
        self.taken = True


class SendSlots:
    """One per dispatcher. Deliveries come in leased, by a claim (``accept``) or an ingest's reservation
    (``take``), and leave recorded or handed back; meanwhile they count as held. Attempts start from the
    per-endpoint queues, endpoints served round-robin, at most ``per_endpoint`` at a time per endpoint
    and ``concurrency`` in all (WHK-8); one that would start with too little lease left is handed back
    unsent with everything queued behind it (WHK-3, WHK-12).

    ``wake`` is the claim loop's: called when room it may be waiting for is made, and when a retry is
    scheduled (it may be sleeping past it).
    """

    def __init__(
        self,
        sender: Sender,
        recorder: Recorder,
        metrics: WebhookMetrics,
        *,
        wake: Callable[[], None],
        per_endpoint: int,
        concurrency: int,
        request_timeout: float,
        lease: timedelta,
        depth: int,
        refill_mark: int,
    ) -> None:
        self._sender = sender
        self._recorder = recorder
        self._metrics = metrics
        self._wake = wake
        self._per_endpoint = per_endpoint
        self._concurrency = concurrency
        self._request_timeout = request_timeout
        # How many deliveries of one endpoint the worker holds at most, and below which it tops one up
        # (the claim's figures: ``Claimer.depth``, ``Claimer.refill_mark``).
        self._depth = depth
        self._refill_mark = refill_mark
        self.max_held = concurrency * HELD_PER_SLOT
        # An attempt starts only if its lease outlives the request by a margin, so no other worker
        # can take the delivery over while the request is in flight (WHK-3).
        self._min_lease_left = request_timeout + min(1.0, (lease.total_seconds() - request_timeout) / 2)
        # Leased and not yet started, per endpoint, in claim order (next_attempt_at, id).
        self.queues: dict[str, deque[Claimed]] = {}
        # Attempts in flight per endpoint: the slots taken.
        self.sending: Counter[str] = Counter()
        # Leased by this worker and not yet recorded or released, per endpoint.
        self.held: Counter[str] = Counter()
        self.tasks: set[asyncio.Task[None]] = set()
        self.handbacks = HandBacks()
        # Set by ``stop``: start no attempt, reserve no room, finish the ones in flight.
        self.stopping = False
        # Set while ``drain`` runs (the claim loop ended): no attempt starts, no room is reserved.
        self._draining = False
        # Ingests' reservations not yet settled: the drain waits for them (what they lease goes back).
        self._reservations = 0
        self._settled = asyncio.Event()
        self._settled.set()

    def stop(self) -> None:
        self.stopping = True

    def room(self) -> int:
        """How many more deliveries the worker may hold (it may be negative: see ``reserve``)."""
        return self.max_held - sum(self.held.values())

    # -- deliveries in ------------------------------------------------------------------------------

    def accept(self, claimed: list[Claimed], mark: int | None = None) -> None:
        """Queue what a claim leased under ``mark`` (None: now, as for a claim made outside the loop)."""
        mark = self.handbacks.mark() if mark is None else mark
        for item in claimed:
            self.held[item.endpoint_id] += 1
        self._queue(claimed, mark)

    def reserve(self, wanted: Mapping[str, int]) -> Reservation:
        """Room for new deliveries, within the same bounds a claim keeps (``depth`` per endpoint,
        ``max_held`` in all); counted as held at once, so a claim meanwhile cannot overfill an
        endpoint (it reads the counts under the endpoint's lock). ``max_held`` is softer: a claim in
        flight sized its batch before this grant, so the two may pass it by up to a batch."""
        if self.stopping or self._draining or self._concurrency <= 0:
            return Reservation({})
        room = self.room()
        busy = set(self.handbacks.running())
        granted: dict[str, int] = {}
        for endpoint_id, count in wanted.items():
            grant = 0 if endpoint_id in busy else min(count, self._depth - self.held[endpoint_id], room)
            if grant > 0:
                granted[endpoint_id] = grant
                self.held[endpoint_id] += grant
                room -= grant
        if not granted:
            return Reservation({})
        self._reservations += 1
        self._settled.clear()
        return Reservation(granted, self.handbacks.open())

    def take(self, reservation: Reservation, claimed: list[Claimed]) -> None:
        """Queue deliveries leased within the reservation (already counted as held). Stopping
        meanwhile, they stay queued and ``drain`` hands them back (it waits for every reservation to
        settle); after it, their leases expire (WHK-4)."""
        self._queue(claimed, reservation.mark)

    def settle(self, reservation: Reservation, used: Mapping[str, int]) -> None:
        if not reservation.granted:
            return
        for endpoint_id, count in reservation.granted.items():
            if count > used.get(endpoint_id, 0):
                self._unhold(endpoint_id, count - used.get(endpoint_id, 0))
        self.handbacks.close(reservation.mark)
        self._reservations -= 1
        if self._reservations <= 0:
            self._settled.set()

    def _queue(self, items: list[Claimed], mark: int) -> None:
        """Queue leased deliveries (counted as held), but hand back those that would overtake
        deliveries of their endpoint handed back since ``mark`` (``HandBacks``): the next claim takes
        them again after the older ones."""
        back: dict[str, list[Claimed]] = {}
        for item in items:
            # Stopping, everything queued goes back with the drain (``drain``), in one batch.
            if not self.stopping and self.handbacks.overtakes(item.endpoint_id, mark):
                back.setdefault(item.endpoint_id, []).append(item)
            else:
                self.queues.setdefault(item.endpoint_id, deque()).append(item)
        for endpoint_id, overtaking in back.items():
            self._hand_back(endpoint_id, overtaking)
        self._pump()

    # -- attempts -----------------------------------------------------------------------------------

    def _pump(self) -> None:
        """Start every attempt the caps allow, endpoints taken round-robin."""
        if self.stopping or self._draining:
            return
        for endpoint_id in list(self.queues):
            queue = self.queues.pop(endpoint_id)
            while queue and self.sending[endpoint_id] < self._per_endpoint and self.sending.total() < self._concurrency:
                if queue[0].lease_deadline - time.monotonic() < self._min_lease_left:
                    # Waited too long behind slow requests: hand the rest back, in order, rather than
                    # send it on a lease that could expire mid-request.
                    self._hand_back(endpoint_id, list(queue))
                    queue.clear()
                    break
                item = queue.popleft()
                self.sending[endpoint_id] += 1
                slot = _Slot(endpoint_id)
                # The bookkeeping in a done callback: it runs even for a task cancelled before its first step.
                self._spawn(
                    self._attempt_safely(item, slot),
                    f"webhook:{item.delivery_id}",
                    then=functools.partial(self._attempt_ended, item, slot),
                )
            if queue:
                # Re-inserted at the end: the next pump serves the other endpoints first.
                self.queues[endpoint_id] = queue
        self._metrics.in_flight.set(self.sending.total())

    def _spawn(
        self, coro: Coroutine[Any, Any, Any], name: str, then: Callable[[asyncio.Task[Any]], None] | None = None
    ) -> None:
        task = asyncio.create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        if then is not None:
            task.add_done_callback(then)

    async def _attempt_safely(self, item: Claimed, slot: _Slot) -> None:
        try:
            try:
                result = await self._sender.send(item)
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
        self.sending[slot.endpoint_id] -= 1
        if self.sending[slot.endpoint_id] <= 0:
            del self.sending[slot.endpoint_id]
        self._pump()

    async def _record(self, item: Claimed, result: AttemptResult) -> None:
        self._metrics.attempt_latency.observe(result.latency)
        if result.refused:
            self._metrics.refused.inc()
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
            self._metrics.deliveries.labels(outcome).inc()
        if outcome == "retrying":
            # A retry is scheduled: the claim loop, which may be sleeping past it, sets its alarm again.
            self._wake()

    def _done_with(self, item: Claimed) -> None:
        self._unhold(item.endpoint_id, 1)

    def _unhold(self, endpoint_id: str, count: int) -> None:
        before = self.held[endpoint_id]
        self.held[endpoint_id] -= count
        if self.held[endpoint_id] <= 0:
            del self.held[endpoint_id]
        # Wake the claim loop only when this made room it was waiting for: the endpoint fell below its
        # top-up mark, or this worker had reached its overall limit. Not on every completion, which
        # would cost a claim transaction per attempt.
        after = before - count
        if after < self._refill_mark <= before or sum(self.held.values()) + count >= self.max_held:
            self._wake()

    # -- hand-backs ---------------------------------------------------------------------------------

    def _hand_back(self, endpoint_id: str, items: list[Claimed]) -> None:
        self.handbacks.begin(endpoint_id)
        # A callback, not the coroutine's ``finally``: it runs even for a task cancelled before its first step.
        self._spawn(
            self._release(items),
            f"webhook-release:{endpoint_id}",
            then=functools.partial(self._released, endpoint_id, items),
        )

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
        if failed and not self.stopping:
            # Still leased to this worker: nothing newer of the endpoint may be leased ahead of them,
            # so it stays marked until they expire and a claim can take them again, oldest first.
            left = max(item.lease_deadline for item in failed) - time.monotonic() + LEASE_EXPIRY_MARGIN
            asyncio.get_running_loop().call_later(max(0.0, left), self.handbacks.end, endpoint_id)
        else:
            self.handbacks.end(endpoint_id)

    # -- the drain ----------------------------------------------------------------------------------

    async def drain(self) -> None:
        """When the claim loop ends: let in-flight attempts finish (all of them after ``stop``; briefly
        when the loop was cancelled without one) and hand back what was never started; the rest are
        cancelled and their leases expire, so another worker makes them again with the same webhook-id
        (WHK-4)."""
        # Nothing starts and nothing is reserved while it drains, stopped or not: attempts finishing
        # meanwhile would otherwise start what an ingest queued, as tasks this drain never awaits. Reset
        # after, as a loop that crashed is started again (the plumbing's guard).
        self._draining = True
        try:
            await self._finish_and_hand_back()
        finally:
            self._draining = False

    async def _finish_and_hand_back(self) -> None:
        queued = [item for queue in self.queues.values() for item in queue]
        self.queues.clear()
        try:
            if self.tasks:
                if self.stopping:
                    log.info("stopping: waiting for %d webhook attempts in flight", len(self.tasks))
                limit = None if self.stopping else min(5.0, self._request_timeout)
                await asyncio.wait(set(self.tasks), timeout=limit)
            # An ingest that reserved room before the stop hands its deliveries over when it commits
            # (``take``): they are queued, never started, and go back with the rest. Bounded: one that
            # has not settled by then leaves its leases to expire (WHK-4).
            if not self._settled.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._settled.wait(), min(5.0, self._request_timeout))
        finally:
            for task in list(self.tasks):
                task.cancel()
            for task in list(self.tasks):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        queued += [item for queue in self.queues.values() for item in queue]
        self.queues.clear()
        if queued:
            try:
                with contextlib.suppress(Exception):
                    await self._recorder.record_batch([(item, None) for item in queued])
            finally:
                for item in queued:
                    self._done_with(item)
