"""The delivery worker: claims due deliveries with leases, makes one signed HTTP attempt each, records
it and schedules what comes next. Any number of workers may run against one database (WHK-3, WHK-4).

Modelled on Polar's ``webhook/tasks.py`` (one attempt per request, the log written after it), with the
outbox relay's lease pattern instead of a job queue: the database is the queue, so a crash anywhere
loses nothing and a dead worker's claim simply expires. Claims and records are batched: one
transaction leases many deliveries, one transaction records many attempts.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import secrets
import time
from collections import Counter, deque
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import aiohttp
from billing_contracts.envelope import utcnow
from billing_contracts.events import DisabledEndpoint, EndpointDisabledData, EndpointDisabledV1
from billing_contracts.signing import signature_header
from billing_runtime.db import UTCDateTime
from billing_runtime.outbox import wait_or_timeout
from billing_runtime.writes import execute_statement_alone, fetch_prepared
from sqlalchemy import (
    Integer,
    Row,
    Select,
    String,
    all_,
    any_,
    bindparam,
    func,
    insert,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from webhook_dispatcher.crypto import SecretBox
from webhook_dispatcher.db.models import Attempt, Delivery, Endpoint
from webhook_dispatcher.db.repositories import due_stats
from webhook_dispatcher.domain.giving_up import given_up_label, given_up_reason
from webhook_dispatcher.domain.schedule import Verdict, judge, next_delay
from webhook_dispatcher.metrics import WebhookMetrics
from webhook_dispatcher.services.batching import GroupCommit
from webhook_dispatcher.services.fanout import fan_out
from webhook_dispatcher.services.transport import AddressRefused
from webhook_dispatcher.services.uow import WebhooksUnitOfWork

log = logging.getLogger(__name__)

USER_AGENT = "billing-webhooks/1.0"
# How stale an endpoint's last_success_at may get before a success refreshes it (and locks the row).
HEALTHY_WINDOW = timedelta(seconds=60)
# Deliveries of one endpoint a worker leases ahead, per slot of its concurrency cap: enough to keep the
# cap busy while the previous batch is being recorded and the next one claimed.
LEASE_DEPTH = 16
# Deliveries a worker holds leased (queued, in flight or being recorded) per unit of its concurrency.
HELD_PER_SLOT = 4

_deliveries = Delivery.__table__
# Each endpoint's oldest due deliveries (SKIP LOCKED), leased and returned with their bodies: one
# statement for a whole batch. The LATERAL subquery walks ix_webhook_deliveries_endpoint_due, so it
# reads only the rows it leases, whatever the endpoint's backlog.
LEASE_SQL = text(
    """
    UPDATE webhook_deliveries AS d
    SET claim_token = :token, claimed_until = :until
    FROM (
        SELECT p.id
        FROM unnest(CAST(:endpoints AS varchar[]), CAST(:quotas AS integer[])) AS q(endpoint_id, quota)
        CROSS JOIN LATERAL (
            SELECT w.id FROM webhook_deliveries AS w
            WHERE w.endpoint_id = q.endpoint_id AND w.status = 'pending' AND w.next_attempt_at <= :now
              AND (w.claimed_until IS NULL OR w.claimed_until < :now)
            ORDER BY w.next_attempt_at, w.id
            LIMIT q.quota
            FOR NO KEY UPDATE SKIP LOCKED
        ) AS p
    ) AS picked, webhook_events AS e
    WHERE d.id = picked.id AND e.id = d.event_id
    RETURNING d.id, d.tenant_id, d.endpoint_id, d.event_id, d.manual, d.next_attempt_at, e.body
    """
).bindparams(bindparam("now", type_=UTCDateTime()), bindparam("until", type_=UTCDateTime()))
# Executed with one parameter set per attempt (executemany: one round trip on asyncpg); the SET
# columns are the keys of those sets, plus the lease and a retry request cleared for every one.
RECORD_DELIVERY = (
    update(_deliveries)
    .where(_deliveries.c.id == bindparam("b_id"))
    .values(claim_token=None, claimed_until=None, retry_requested=False)
)
RELEASE_DELIVERY = (
    update(_deliveries).where(_deliveries.c.id == bindparam("b_id")).values(claim_token=None, claimed_until=None)
)


# A batch of successes on healthy endpoints (the hot path of ``record_batch``), as one statement that
# commits itself: each delivery leased by this claim is marked succeeded and its attempt logged, and
# each delivery's endpoint comes back with whether it was marked failing meanwhile.
_RECORD_SUCCESSES = text(
    """
    WITH done AS (
        UPDATE webhook_deliveries AS d
        SET attempt_count = d.attempt_count + 1, last_attempt_at = x.started_at,
            last_status_code = x.status_code, last_error = NULL, status = 'succeeded',
            next_attempt_at = NULL, claim_token = NULL, claimed_until = NULL, manual = false,
            resume_at = NULL, retry_requested = false,
            manual_attempts = d.manual_attempts + CASE WHEN d.manual THEN 1 ELSE 0 END, updated_at = :now
        FROM unnest(CAST(:ids AS varchar[]), CAST(:tokens AS varchar[]), CAST(:started AS timestamptz[]),
                    CAST(:codes AS integer[])) AS x(id, token, started_at, status_code)
        WHERE d.id = x.id AND d.claim_token = x.token
        RETURNING d.id, d.attempt_count, d.endpoint_id
    ), logged AS (
        INSERT INTO webhook_attempts (delivery_id, number, started_at, outcome, status_code, error,
                                      latency_ms, response_body, manual)
        SELECT done.id, done.attempt_count, a.started_at, 'succeeded', a.status_code, NULL,
               a.latency_ms, a.body, a.manual
        FROM done
        JOIN unnest(CAST(:ids AS varchar[]), CAST(:started AS timestamptz[]), CAST(:codes AS integer[]),
                    CAST(:latencies AS integer[]), CAST(:bodies AS text[]), CAST(:manuals AS boolean[]))
             AS a(id, started_at, status_code, latency_ms, body, manual) ON a.id = done.id
    )
    SELECT done.id, done.endpoint_id,
           EXISTS (SELECT 1 FROM webhook_endpoints AS e WHERE e.id = done.endpoint_id AND e.failing_since IS NOT NULL)
    FROM done
    """
).bindparams(bindparam("now", type_=UTCDateTime()))
# A success clears a failing mark set meanwhile by an earlier failure (its own statement: endpoint
# rows only, so it cannot deadlock with a transaction that locks an endpoint and then its deliveries).
_HEAL_ENDPOINTS = text(
    """
    UPDATE webhook_endpoints SET failing_since = NULL, last_success_at = :now
    WHERE id = ANY(CAST(:ids AS varchar[])) AND failing_since IS NOT NULL
    """
).bindparams(bindparam("now", type_=UTCDateTime()))


async def _record_successes(
    engine: AsyncEngine, entries: list[tuple[Claimed, AttemptResult | None]], now: datetime
) -> list[str | None]:
    results = [result for _, result in entries]
    assert all(result is not None for result in results)
    params = {
        "now": now,
        "ids": [item.delivery_id for item, _ in entries],
        "tokens": [item.token for item, _ in entries],
        "started": [result.started_at for result in results],  # type: ignore[union-attr]
        "codes": [result.status for result in results],  # type: ignore[union-attr]
        "latencies": [round(result.latency * 1000) for result in results],  # type: ignore[union-attr]
        "bodies": [result.response_body for result in results],  # type: ignore[union-attr]
        "manuals": [item.manual for item, _ in entries],
    }
    rows = await execute_statement_alone(engine, _RECORD_SUCCESSES, params)
    recorded = {delivery_id for delivery_id, _, _ in rows}
    failing = sorted({endpoint_id for _, endpoint_id, marked in rows if marked})
    if failing:
        await execute_statement_alone(engine, _HEAL_ENDPOINTS, {"now": now, "ids": failing})
    outcomes: list[str | None] = []
    for item, _ in entries:
        if item.delivery_id in recorded:
            outcomes.append("succeeded")
        else:
            log.warning("lost the lease on delivery %s; its attempt is not recorded", item.delivery_id)
            outcomes.append(None)
    return outcomes


@functools.cache
def _lock_endpoints() -> Select[Any]:
    """The enabled endpoints among ``:ids``, locked, skipping those another claim holds. NO KEY UPDATE,
    not UPDATE: inserting a delivery takes KEY SHARE on its endpoint (the foreign key), and a plain
    FOR UPDATE here would skip every endpoint that is receiving new events, starving exactly the
    busiest endpoints."""
    e = Endpoint.__table__.c
    return (
        select(*Endpoint.__table__.c)
        .where(
            e.id == any_(bindparam("ids", type_=ARRAY(String()))),
            e.enabled.is_(True),
            e.deleted_at.is_(None),
        )
        .with_for_update(skip_locked=True, key_share=True)
    )


@functools.cache
def _taken_endpoints() -> Select[Any]:
    """Which of the endpoints ``:ids`` have deliveries under a live lease of a worker other than
    ``:worker``."""
    d = _deliveries.c
    now = bindparam("now", type_=UTCDateTime())
    return (
        select(d.endpoint_id)
        .where(
            d.endpoint_id == any_(bindparam("ids", type_=ARRAY(String()))),
            d.claim_token.is_not(None),
            d.status == "pending",
            d.claimed_until >= now,
            ~d.claim_token.startswith(bindparam("worker", type_=String())),
        )
        .distinct()
    )


@functools.cache
def _candidates() -> Select[tuple[str]]:
    """The endpoints with the oldest due deliveries, up to ``:limit``, among the ``:window`` oldest due
    deliveries of endpoints neither in ``:full`` nor leased by a worker other than ``:worker``: the
    claim's first step, built once and sent as prepared driver SQL."""
    d = _deliveries.c
    now = bindparam("now", type_=UTCDateTime())
    theirs = (
        d.claim_token.is_not(None)
        & (d.status == "pending")
        & (d.claimed_until >= now)
        & ~d.claim_token.startswith(bindparam("worker", type_=String()))
    )
    window = (
        select(d.endpoint_id, d.next_attempt_at)
        .where(
            (d.status == "pending"),
            d.next_attempt_at <= now,
            d.claimed_until.is_(None) | (d.claimed_until < now),
            d.endpoint_id != all_(bindparam("full", type_=ARRAY(String()))),
            d.endpoint_id.not_in(select(d.endpoint_id).where(theirs)),
        )
        .order_by(d.next_attempt_at)
        .limit(bindparam("window", type_=Integer()))
        .subquery()
    )
    return (
        select(window.c.endpoint_id)
        .group_by(window.c.endpoint_id)
        .order_by(func.min(window.c.next_attempt_at))
        .limit(bindparam("limit", type_=Integer()))
    )


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


@dataclass(frozen=True)
class Claimed:
    """One attempt this worker owns until ``token``'s lease expires."""

    delivery_id: str
    tenant_id: str
    endpoint_id: str
    event_id: str
    url: str
    body: bytes
    secrets: list[str]
    manual: bool
    token: str
    # The endpoint was healthy when claimed (not failing, a success within the last minute): a success
    # then changes nothing on the endpoint row, so recording it need not lock that row (WHK-10).
    endpoint_healthy: bool = False
    # time.monotonic() when the lease ends (taken before the claim began, so never late).
    lease_deadline: float = math.inf


@dataclass(frozen=True)
class AttemptResult:
    started_at: datetime
    latency: float
    status: int | None = None
    error: str | None = None
    response_body: str | None = None
    retry_after: str | None = None
    refused: bool = False


class Dispatcher:
    """One per worker process. Three things run side by side:

    - the claim loop leases due deliveries in batches, one transaction per batch, and queues them per
      endpoint;
    - sends start from those queues, at most ``per_endpoint`` at a time per endpoint and
      ``concurrency`` in all;
    - outcomes are recorded in batches (``GroupCommit``), one transaction per batch.

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
        self._wake = asyncio.Event()
        # Leased and not yet started, per endpoint, in claim order (next_attempt_at, id).
        self._queues: dict[str, deque[Claimed]] = {}
        self._sending: Counter[str] = Counter()
        # Leased by this instance and not yet recorded or released, per endpoint.
        self._held: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._recorder: GroupCommit[tuple[Claimed, AttemptResult | None], str | None] = GroupCommit(
            self.record_batch, max_batch=config.batch
        )

    def wake(self) -> None:
        self._wake.set()

    @property
    def depth(self) -> int:
        """How many deliveries of one endpoint this worker leases ahead of sending them."""
        return self.config.per_endpoint * LEASE_DEPTH

    @property
    def _refill_mark(self) -> int:
        # An endpoint is topped up once half its depth is left, so each claim brings at least half a
        # depth of its deliveries instead of a few at a time.
        return max(1, self.depth // 2)

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
            while True:
                # Cleared before claiming, so a wake-up that arrives meanwhile is not lost.
                self._wake.clear()
                room = min(self.config.batch, self._max_held - sum(self._held.values()))
                claimed: list[Claimed] = []
                if room > 0:
                    try:
                        claimed = await self.claim(room, held=self._held)
                    except Exception:
                        log.warning("claiming deliveries failed; retrying in %.1fs", backoff, exc_info=True)
                        await asyncio.sleep(backoff)
                        backoff = min(backoff * 2, 30.0)
                        continue
                    backoff = self.config.poll_interval
                    self._accept(claimed)
                if not claimed:
                    await wait_or_timeout(self._wake, self.config.poll_interval)
        finally:
            await self._drain()

    def _accept(self, claimed: list[Claimed]) -> None:
        for item in claimed:
            self._queues.setdefault(item.endpoint_id, deque()).append(item)
            self._held[item.endpoint_id] += 1
        self._pump()

    def _pump(self) -> None:
        """Start every attempt the caps allow, endpoints taken round-robin."""
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
                    self._spawn(self._release(list(queue)), f"webhook-release:{endpoint_id}")
                    queue.clear()
                    break
                item = queue.popleft()
                self._sending[endpoint_id] += 1
                self._spawn(self._attempt_safely(item), f"webhook:{item.delivery_id}")
            if queue:
                # Re-inserted at the end: the next pump serves the other endpoints first.
                self._queues[endpoint_id] = queue
        self.metrics.in_flight.set(self._sending.total())

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _done_with(self, item: Claimed) -> None:
        before = self._held[item.endpoint_id]
        self._held[item.endpoint_id] -= 1
        if self._held[item.endpoint_id] <= 0:
            del self._held[item.endpoint_id]
        # Wake the claim loop only when this made room it was waiting for: the endpoint fell below its
        # top-up mark, or this worker had reached its overall limit. Not on every completion, which
        # would cost a claim transaction per attempt.
        if before == self._refill_mark or sum(self._held.values()) + 1 == self._max_held:
            self._wake.set()

    async def _drain(self) -> None:
        """On shutdown let in-flight attempts finish briefly and hand back what was never started; the
        rest are cancelled and their leases expire, so another worker makes them again with the same
        webhook-id (WHK-4)."""
        queued = [item for queue in self._queues.values() for item in queue]
        self._queues.clear()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=min(5.0, self.config.request_timeout))
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if queued:
            with contextlib.suppress(Exception):
                await self.record_batch([(item, None) for item in queued])

    async def run_once(self) -> int:
        """Claim and complete one batch (tests and tools); return how many attempts were made."""
        claimed = await self.claim(self.config.batch)
        caps: dict[str, asyncio.Semaphore] = {}

        async def one(item: Claimed) -> None:
            async with caps.setdefault(item.endpoint_id, asyncio.Semaphore(self.config.per_endpoint)):
                result = await self.send(item)
            await self._record(item, result)

        await asyncio.gather(*(one(item) for item in claimed))
        return len(claimed)

    async def _attempt_safely(self, item: Claimed) -> None:
        try:
            try:
                result = await self.send(item)
            finally:
                self._sending[item.endpoint_id] -= 1
                if self._sending[item.endpoint_id] <= 0:
                    del self._sending[item.endpoint_id]
                self._pump()
            await self._record(item, result)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The claim stays until its lease expires; then the attempt is made again.
            log.exception("attempt of delivery %s crashed", item.delivery_id)
        finally:
            self._done_with(item)

    async def _release(self, items: list[Claimed]) -> None:
        try:
            await asyncio.gather(*(self._recorder.submit((item, None)) for item in items))
        except Exception:
            log.warning("handing back %d leased deliveries failed; their leases expire", len(items), exc_info=True)
        finally:
            for item in items:
                self._done_with(item)

    async def _record(self, item: Claimed, result: AttemptResult) -> None:
        self.metrics.attempt_latency.observe(result.latency)
        if result.refused:
            self.metrics.refused.inc()
        try:
            outcome = await self._recorder.submit((item, result))
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
            outcome = await self._recorder.submit((item, fallback))
        if outcome is not None:
            self.metrics.deliveries.labels(outcome).inc()

    # -- claiming ---------------------------------------------------------------------------------

    async def claim(self, limit: int, *, held: Mapping[str, int] | None = None) -> list[Claimed]:
        """Lease up to ``limit`` due deliveries in one transaction, at most ``depth`` per endpoint
        counting the ``held`` ones, and only of endpoints no other worker holds a lease on (WHK-8).

        The endpoint rows are locked (SKIP LOCKED) while the other workers' leases are checked and the
        deliveries leased, so two workers can never both take one endpoint. Pending deliveries of a
        candidate found disabled or deleted are given up in the same transaction (``_give_up_orphans``).
        """
        held = held or {}
        now = utcnow()
        lease_deadline = time.monotonic() + self.config.lease.total_seconds()
        token = self.worker_id + secrets.token_hex(10)
        depth = self.depth
        full = [endpoint_id for endpoint_id, n in held.items() if n >= self._refill_mark]
        async with self.uow() as uow:
            # The oldest due deliveries only (index on status, next_attempt_at), never the whole backlog;
            # endpoints this worker cannot take now are left out first, so they cannot crowd out the
            # others (a worker never idles while an endpoint it could serve has due deliveries).
            # Advisory (re-checked under the locks below), so outside the transaction: a claim that
            # finds nothing, the usual end of a claim loop, is then one statement, not three.
            params = {"now": now, "worker": self.worker_id, "full": full, "window": limit * 4, "limit": limit}
            found = await execute_statement_alone(uow.bound_engine, _candidates(), params)
            endpoint_ids = [row[0] for row in found]
            if not endpoint_ids:
                return []
            session = uow.session
            # Driver SQL compiled once, rows without the ORM (what is read is only looked at).
            locked = await fetch_prepared(session, _lock_endpoints(), {"ids": endpoint_ids})
            endpoints: dict[str, Any] = {row["id"]: SimpleNamespace(**row) for row in locked}
            # The lock skips an endpoint another claim holds, and one disabled or deleted whose deliveries
            # are still due: those the disabling missed (stored by an ingest that raced it) are given up
            # here, so they cannot sit in the due window forever.
            skipped = [endpoint_id for endpoint_id in endpoint_ids if endpoint_id not in endpoints]
            given_up = await self._give_up_orphans(session, skipped, now) if skipped else Counter()
            quotas: dict[str, int] = {}
            if endpoints:
                # Authoritative, under the endpoint locks: a claim that committed before we locked is seen.
                params = {"ids": list(endpoints), "now": now, "worker": self.worker_id}
                taken = {row["endpoint_id"] for row in await fetch_prepared(session, _taken_endpoints(), params)}
                eligible = [e for e in endpoint_ids if e in endpoints and e not in taken]
                # An even share each (the batch is not spent on the first endpoint's backlog), oldest first.
                share = max(1, limit // max(1, len(eligible)))
                for endpoint_id in eligible[:limit]:
                    quota = min(depth - held.get(endpoint_id, 0), share)
                    if quota > 0:
                        quotas[endpoint_id] = quota
            rows: list[Row[Any]] = []
            if quotas:
                rows = await self._lease(session, quotas, token, now, now + self.config.lease)
            if not rows and not given_up:
                return []
            await uow.commit()
        for label, count in given_up.items():
            self.metrics.given_up.labels(label).inc(count)
        if not rows:
            # Only orphans were found, and they are gone from the due window now: claim again at once
            # rather than idle a poll interval (each round fails some rows, so this ends).
            return await self.claim(limit, held=held)
        keys: dict[str, list[str]] = {}
        rows.sort(key=lambda r: (r.endpoint_id, r.next_attempt_at, r.id))
        claimed = []
        for row in rows:
            endpoint = endpoints[row.endpoint_id]
            if endpoint.id not in keys:
                keys[endpoint.id] = self._keys(endpoint, now)
            claimed.append(
                Claimed(
                    delivery_id=row.id,
                    tenant_id=row.tenant_id,
                    endpoint_id=endpoint.id,
                    event_id=row.event_id,
                    url=endpoint.url,
                    body=row.body.encode(),
                    secrets=keys[endpoint.id],
                    manual=row.manual,
                    token=token,
                    endpoint_healthy=endpoint.failing_since is None
                    and endpoint.last_success_at is not None
                    and now - endpoint.last_success_at < HEALTHY_WINDOW,
                    lease_deadline=lease_deadline,
                )
            )
        return claimed

    @staticmethod
    async def _give_up_orphans(session: AsyncSession, endpoint_ids: list[str], now: datetime) -> Counter[str]:
        """Fail the unleased pending deliveries of those of ``endpoint_ids`` that are disabled or deleted,
        as disabling them did (``fail_pending``); returns how many, by ``given_up`` label. The endpoints
        are locked first (SKIP LOCKED), so a disabling still in progress is left to finish its own work,
        and the lock order (endpoint, then its deliveries) is the one every writer uses."""
        gone = (
            select(Endpoint.id, Endpoint.deleted_at, Endpoint.disabled_reason)
            .where(Endpoint.id.in_(endpoint_ids), Endpoint.enabled.is_(False) | Endpoint.deleted_at.is_not(None))
            .with_for_update(skip_locked=True, key_share=True)
        )
        by_reason: dict[tuple[str, str], list[str]] = {}
        for endpoint_id, deleted_at, disabled_reason in (await session.execute(gone)).all():
            deleted = deleted_at is not None
            label = given_up_label(deleted=deleted)
            reason = given_up_reason(deleted=deleted, disabled_reason=disabled_reason)
            by_reason.setdefault((label, reason), []).append(endpoint_id)
        counts: Counter[str] = Counter()
        for (label, reason), ids in by_reason.items():
            result = await session.execute(
                update(Delivery)
                .where(
                    Delivery.endpoint_id.in_(ids),
                    Delivery.status == "pending",
                    Delivery.claimed_until.is_(None) | (Delivery.claimed_until < now),
                )
                .values(status="failed", next_attempt_at=None, last_error=reason, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            failed = int(result.rowcount)  # type: ignore[attr-defined]
            if failed:
                counts[label] += failed
                log.warning("gave up %d pending deliveries of %s (%s)", failed, ids, reason)
        return counts

    @staticmethod
    async def _lease(
        session: AsyncSession, quotas: dict[str, int], token: str, now: datetime, until: datetime
    ) -> list[Row[Any]]:
        """Pick each endpoint's oldest due deliveries (SKIP LOCKED), lease them and load their bodies:
        one statement for every endpoint of the batch."""
        result = await session.execute(
            LEASE_SQL,
            {
                "endpoints": list(quotas),
                "quotas": list(quotas.values()),
                "token": token,
                "now": now,
                "until": until,
            },
        )
        return list(result.all())

    def _keys(self, endpoint: Endpoint, now: datetime) -> list[str]:
        keys = [self.box.decrypt(endpoint.secret_encrypted)]
        if (
            endpoint.previous_secret_encrypted is not None
            and endpoint.previous_secret_expires_at is not None
            and endpoint.previous_secret_expires_at > now
        ):
            keys.append(self.box.decrypt(endpoint.previous_secret_encrypted))
        return keys

    # -- one attempt ------------------------------------------------------------------------------

    async def send(self, item: Claimed) -> AttemptResult:
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": item.event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(item.secrets, item.event_id, timestamp, item.body),
        }
        started_at = utcnow()
        started = time.perf_counter()
        timeout = aiohttp.ClientTimeout(total=self.config.request_timeout)
        try:
            async with self.client().post(
                item.url, data=item.body, headers=headers, allow_redirects=False, timeout=timeout
            ) as response:
                excerpt = await _read_up_to(response, self.config.excerpt_bytes)
                error = None
                if 300 <= response.status < 400:
                    # The receiver controls this header: make it storable text (no NUL, no lone surrogates).
                    location = _clean(response.headers.get("Location", "")[:200])
                    error = f"redirect not followed (Location: {location})"
                return AttemptResult(
                    started_at=started_at,
                    latency=time.perf_counter() - started,
                    status=response.status,
                    error=error,
                    response_body=_text(excerpt),
                    retry_after=response.headers.get("Retry-After"),
                )
        except aiohttp.ClientConnectorError as exc:
            refused = isinstance(exc.os_error, AddressRefused)
            reason = str(exc.os_error) if refused else f"connection failed: {exc.os_error.strerror or exc.os_error}"
            return AttemptResult(started_at, time.perf_counter() - started, error=reason, refused=refused)
        except TimeoutError:
            return AttemptResult(
                started_at, time.perf_counter() - started, error=f"timed out after {self.config.request_timeout:g}s"
            )
        except (aiohttp.ClientError, ValueError) as exc:
            # ValueError: aiohttp refuses some URLs (e.g. non-canonical IPv4 literals) before connecting.
            return AttemptResult(started_at, time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}")

    async def record(self, item: Claimed, result: AttemptResult) -> str | None:
        """Record one attempt (see ``record_batch``)."""
        return (await self.record_batch([(item, result)]))[0]

    async def record_batch(self, entries: list[tuple[Claimed, AttemptResult | None]]) -> list[str | None]:
        """Write each attempt and its delivery's next state in one transaction, each only if this
        worker still holds that delivery's lease (WHK-4); an entry without a result hands its lease
        back untouched. Returns each delivery's outcome (succeeded, retrying, failed), or None for a
        lost lease or a hand-back."""
        now = utcnow()
        outcomes: list[str | None] = [None] * len(entries)
        verdicts: dict[int, Verdict] = {}
        for n, (_, result) in enumerate(entries):
            if result is not None:
                redirected = result.status is not None and 300 <= result.status < 400
                verdicts[n] = judge(None if redirected else result.status, result.retry_after)
        # The hot path (a success on a healthy endpoint) leaves the endpoint row alone unless it was
        # marked failing meanwhile: locking it would serialize every attempt to one endpoint (WHK-10).
        locked_ids = {
            entries[n][0].endpoint_id
            for n, v in verdicts.items()
            if not (v.succeeded and entries[n][0].endpoint_healthy)
        }
        unlocked_ids = {entries[n][0].endpoint_id for n in verdicts} - locked_ids
        async with self.uow() as uow:
            if len(verdicts) == len(entries) and not locked_ids:
                # Every entry a success on a healthy endpoint: the common case, one statement.
                return await _record_successes(uow.bound_engine, entries, now)
            session = uow.session
            endpoints: dict[str, Endpoint] = {}
            if verdicts:
                # Endpoints before deliveries, each in id order: the order the API's endpoint updates and
                # every other recorder lock in, so no deadlock.
                stmt = (
                    select(Endpoint)
                    .where(
                        Endpoint.id.in_(locked_ids)
                        | (Endpoint.id.in_(unlocked_ids) & Endpoint.failing_since.is_not(None))
                    )
                    .order_by(Endpoint.id)
                    .with_for_update(key_share=True)
                )
                endpoints = {e.id: e for e in (await session.execute(stmt)).scalars()}
            held_stmt = (
                select(
                    Delivery.id,
                    Delivery.attempt_count,
                    Delivery.manual_attempts,
                    Delivery.resume_at,
                    Delivery.retry_requested,
                )
                .where(tuple_(Delivery.id, Delivery.claim_token).in_([(i.delivery_id, i.token) for i, _ in entries]))
                .order_by(Delivery.id)
                .with_for_update(key_share=True)
            )
            counts = {row.id: row for row in (await session.execute(held_stmt)).all()}
            attempts: list[dict[str, Any]] = []
            changes: list[dict[str, Any]] = []
            releases: list[dict[str, Any]] = []
            disabling: dict[str, str] = {}
            # In the order the requests started, so an endpoint's failing mark follows its history.
            order = sorted(range(len(entries)), key=lambda n: entries[n][1].started_at if entries[n][1] else now)
            for n in order:
                item, result = entries[n]
                if item.delivery_id not in counts:
                    if result is not None:
                        log.warning("lost the lease on delivery %s; its attempt is not recorded", item.delivery_id)
                    continue
                held = counts.pop(item.delivery_id)
                if result is None:
                    releases.append({"b_id": item.delivery_id})
                    continue
                verdict = verdicts[n]
                number = held.attempt_count + 1
                manual_attempts = held.manual_attempts + (1 if item.manual else 0)
                endpoint = endpoints.get(item.endpoint_id)
                if endpoint is not None and (endpoint.deleted_at is not None or endpoint.tenant_id != item.tenant_id):
                    endpoint = None
                attempts.append(
                    {
                        "delivery_id": item.delivery_id,
                        "number": number,
                        "started_at": result.started_at,
                        "outcome": "succeeded" if verdict.succeeded else "failed",
                        "status_code": result.status,
                        "error": result.error,
                        "latency_ms": round(result.latency * 1000),
                        "response_body": result.response_body,
                        "manual": item.manual,
                    }
                )
                next_attempt_at = None
                if verdict.succeeded:
                    outcome = status = "succeeded"
                    if endpoint is not None:
                        endpoint.last_success_at = now
                        endpoint.failing_since = None
                else:
                    delay = None
                    # A disabled or deleted endpoint gets no further attempts, whatever the schedule says.
                    live = endpoint is not None and endpoint.enabled and endpoint.id not in disabling
                    if live and not verdict.gone and not item.manual:
                        # The schedule counts automatic attempts only: a manual one spends no step.
                        delay = next_delay(
                            self.config.schedule,
                            number - manual_attempts,
                            jitter=self.config.jitter,
                            retry_after=verdict.retry_after,
                            max_retry_after=self.config.max_retry_after,
                        )
                    if live and not verdict.gone and item.manual and held.resume_at is not None:
                        # WHK-11: a manual attempt of a pending delivery failed; its schedule resumes.
                        outcome, status = "retrying", "pending"
                        next_attempt_at = max(held.resume_at, now)
                    elif delay is None:
                        outcome = status = "failed"
                    else:
                        outcome, status = "retrying", "pending"
                        next_attempt_at = now + timedelta(seconds=delay)
                    if endpoint is not None and endpoint.enabled and endpoint.id not in disabling:
                        if endpoint.failing_since is None:
                            endpoint.failing_since = now
                        if verdict.gone:
                            disabling[endpoint.id] = "gone"
                        elif now - endpoint.failing_since >= self.config.disable_after:
                            disabling[endpoint.id] = "failing"
                manual, resume_at = False, None
                live = endpoint is not None and endpoint.enabled and endpoint.id not in disabling
                if held.retry_requested and not verdict.succeeded and live:
                    # A manual retry asked for while this attempt was in flight: one more attempt now,
                    # after which the schedule (if any is left) resumes.
                    manual, resume_at = True, next_attempt_at if status == "pending" else None
                    status, next_attempt_at = "pending", now
                    outcome = "retrying"
                changes.append(
                    {
                        "b_id": item.delivery_id,
                        "attempt_count": number,
                        "manual_attempts": manual_attempts,
                        "manual": manual,
                        "resume_at": resume_at,
                        "last_attempt_at": result.started_at,
                        "last_status_code": result.status,
                        "last_error": result.error,
                        "status": status,
                        "next_attempt_at": next_attempt_at,
                    }
                )
                outcomes[n] = outcome
            if changes:
                await session.execute(RECORD_DELIVERY, [{**c, "updated_at": now} for c in changes])
                await session.execute(insert(Attempt.__table__), attempts)
            if releases:
                await session.execute(RELEASE_DELIVERY, releases)
            given_up = 0
            for endpoint_id, reason in disabling.items():
                # After the deliveries' own updates: the retries just scheduled fail with the endpoint.
                given_up += await self._disable(uow, endpoints[endpoint_id], reason, now)
            await uow.commit()
        self.metrics.given_up.labels(given_up_label(deleted=False)).inc(given_up)
        return outcomes

    async def _disable(self, uow: WebhooksUnitOfWork, endpoint: Endpoint, reason: str, now: datetime) -> int:
        """Disable the endpoint, give up its pending deliveries, and tell the tenant: ``endpoint.disabled``
        to its other endpoints and, through the outbox, to its event log (one event, one id), all in the
        caller's transaction (WHK-6). Returns how many pending deliveries were given up."""
        log.warning("disabling webhook endpoint %s (%s)", endpoint.id, reason)
        endpoint.enabled = False
        endpoint.disabled_reason = reason
        endpoint.updated_at = now
        given_up = await uow.endpoints(endpoint.tenant_id).fail_pending(endpoint, now)
        event = EndpointDisabledV1(
            tenant_id=endpoint.tenant_id,
            livemode=endpoint.livemode,
            occurred_at=now,
            data=EndpointDisabledData(
                endpoint=DisabledEndpoint(
                    id=endpoint.id,
                    url=endpoint.url,
                    description=endpoint.description,
                    disabled_reason=reason,
                    failing_since=endpoint.failing_since,
                    disabled_at=now,
                )
            ),
        )
        uow.emit(event)
        await fan_out(
            uow,
            tenant_id=endpoint.tenant_id,
            event_id=event.event_id,
            event_type=event.event_type,
            created_at=now,
            livemode=endpoint.livemode,
            data=event.model_dump(mode="json")["data"],
            exclude=endpoint.id,
        )
        return given_up

    # -- metrics ----------------------------------------------------------------------------------

    async def watch_backlog(self, interval: float = 5.0) -> None:
        while True:
            with contextlib.suppress(Exception):
                now = utcnow()
                async with self.uow() as uow:
                    count, oldest = await due_stats(uow.session, now)
                self.metrics.backlog.set(count)
                self.metrics.oldest_pending_age.set(0 if oldest is None else (now - oldest).total_seconds())
            await asyncio.sleep(interval)


async def _read_up_to(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The first ``limit`` bytes of the body (one ``read`` may return less); the rest is never read."""
    data = b""
    while len(data) < limit:
        chunk = await response.content.read(limit - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _clean(text: str) -> str:
    """Any receiver-controlled string as text PostgreSQL can store."""
    return text.encode("utf-8", errors="replace").decode("utf-8").replace("\x00", "\ufffd")


def _text(raw: bytes) -> str:
    # PostgreSQL text cannot hold NUL; anything undecodable is shown, not dropped.
    return raw.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
