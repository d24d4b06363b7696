"""The delivery worker: claims due deliveries with leases, makes one signed HTTP attempt each, records
it and schedules what comes next. Any number of workers may run against one database (WHK-3, WHK-4).

Modelled on Polar's ``webhook/tasks.py`` (one attempt per task, the log written after the request),
with the outbox relay's lease pattern instead of a job queue: the database is the queue, so a crash
anywhere loses nothing and a dead worker's claim simply expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp
from billing_contracts.envelope import new_event_id, utcnow
from billing_contracts.signing import signature_header
from billing_runtime.outbox import wait_or_timeout
from sqlalchemy import func, select, update

from webhook_dispatcher.crypto import SecretBox
from webhook_dispatcher.db.models import Attempt, Delivery, Endpoint, WebhookEvent
from webhook_dispatcher.db.repositories import due_stats
from webhook_dispatcher.domain.event_types import ENDPOINT_DISABLED
from webhook_dispatcher.domain.schedule import judge, next_delay
from webhook_dispatcher.metrics import WebhookMetrics
from webhook_dispatcher.services.fanout import fan_out, rfc3339
from webhook_dispatcher.services.transport import AddressRefused
from webhook_dispatcher.services.uow import WebhooksUnitOfWork

log = logging.getLogger(__name__)

USER_AGENT = "billing-webhooks/1.0"
# How stale an endpoint's last_success_at may get before a success refreshes it (and locks the row).
HEALTHY_WINDOW = timedelta(seconds=60)


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
        self._wake = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()

    def wake(self) -> None:
        self._wake.set()

    # -- the loop ---------------------------------------------------------------------------------

    async def run(self) -> None:
        backoff = self.config.poll_interval
        try:
            while True:
                # Cleared before claiming, so a wake-up that arrives meanwhile is not lost.
                self._wake.clear()
                free = self.config.concurrency - len(self._in_flight)
                claimed: list[Claimed] = []
                if free > 0:
                    try:
                        claimed = await self.claim(free)
                    except Exception:
                        log.warning("claiming deliveries failed; retrying in %.1fs", backoff, exc_info=True)
                        await asyncio.sleep(backoff)
                        backoff = min(backoff * 2, 30.0)
                        continue
                    backoff = self.config.poll_interval
                for item in claimed:
                    task = asyncio.create_task(self._attempt_safely(item), name=f"webhook:{item.delivery_id}")
                    self._in_flight.add(task)
                    task.add_done_callback(self._finished)
                self.metrics.in_flight.set(len(self._in_flight))
                if not claimed or len(claimed) >= free:
                    await wait_or_timeout(self._wake, self.config.poll_interval)
        finally:
            await self._drain()

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self.metrics.in_flight.set(len(self._in_flight))
        # A freed slot (and a freed per-endpoint slot) may let the next due delivery go.
        self._wake.set()

    async def _drain(self) -> None:
        """On shutdown let in-flight attempts finish briefly; the rest are cancelled and their leases
        expire, so another worker makes them again with the same webhook-id (WHK-4)."""
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=min(5.0, self.config.request_timeout))
        for task in list(self._in_flight):
            task.cancel()
        for task in list(self._in_flight):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def run_once(self) -> int:
        """Claim and complete one batch (tests and tools); return how many attempts were made."""
        claimed = await self.claim(self.config.concurrency)
        await asyncio.gather(*(self._attempt_safely(c) for c in claimed))
        return len(claimed)

    async def _attempt_safely(self, item: Claimed) -> None:
        try:
            await self.attempt(item)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The claim stays until its lease expires; then the attempt is made again.
            log.exception("attempt of delivery %s crashed", item.delivery_id)

    # -- claiming ---------------------------------------------------------------------------------

    async def claim(self, limit: int) -> list[Claimed]:
        """Lease up to ``limit`` due deliveries, at most ``per_endpoint`` in flight per endpoint.

        The endpoint rows are locked (SKIP LOCKED) while their in-flight count is read and their
        deliveries are leased, so two workers can never both fill the same endpoint's free slots.
        SQLite (embedded mode, one process) takes the write lock at BEGIN instead.
        """
        now = utcnow()
        token = secrets.token_hex(16)
        unclaimed = (Delivery.claimed_until.is_(None)) | (Delivery.claimed_until < now)
        due = (Delivery.status == "pending") & (Delivery.next_attempt_at <= now) & unclaimed
        rows: list[tuple[Delivery, Endpoint, WebhookEvent]] = []
        async with self.uow() as uow:
            session = uow.session
            postgres = session.get_bind().dialect.name == "postgresql"
            candidates = (
                select(Delivery.endpoint_id)
                .join(Endpoint, Endpoint.id == Delivery.endpoint_id)
                .where(due, Endpoint.enabled.is_(True), Endpoint.deleted_at.is_(None))
                .group_by(Delivery.endpoint_id)
                .order_by(func.min(Delivery.next_attempt_at))
                .limit(max(limit, 1) * 4)
            )
            endpoint_ids = list((await session.execute(candidates)).scalars())
            if not endpoint_ids:
                return []
            lock = select(Endpoint).where(Endpoint.id.in_(endpoint_ids))
            if postgres:
                # NO KEY UPDATE, not UPDATE: inserting a delivery takes KEY SHARE on its endpoint
                # (the foreign key), and a plain FOR UPDATE here would skip every endpoint that is
                # receiving new events, starving exactly the busiest endpoints.
                lock = lock.with_for_update(skip_locked=True, key_share=True)
            endpoints = {e.id: e for e in (await session.execute(lock)).scalars()}
            busy_stmt = (
                select(Delivery.endpoint_id, func.count())
                .where(
                    Delivery.endpoint_id.in_(list(endpoints)),
                    Delivery.status == "pending",
                    Delivery.claimed_until >= now,
                )
                .group_by(Delivery.endpoint_id)
            )
            busy = {endpoint_id: int(n) for endpoint_id, n in (await session.execute(busy_stmt)).all()}
            budget = limit
            chosen: list[str] = []
            for endpoint_id in endpoint_ids:
                if budget <= 0:
                    break
                if endpoint_id not in endpoints:
                    continue
                free = min(self.config.per_endpoint - busy.get(endpoint_id, 0), budget)
                if free <= 0:
                    continue
                pick = (
                    select(Delivery.id)
                    .where(Delivery.endpoint_id == endpoint_id, due)
                    .order_by(Delivery.next_attempt_at, Delivery.id)
                    .limit(free)
                )
                if postgres:
                    pick = pick.with_for_update(skip_locked=True, key_share=True)
                ids = list((await session.execute(pick)).scalars())
                chosen.extend(ids)
                budget -= len(ids)
            if not chosen:
                return []
            await session.execute(
                update(Delivery)
                .where(Delivery.id.in_(chosen))
                .values(claim_token=token, claimed_until=now + self.config.lease)
                .execution_options(synchronize_session=False)
            )
            loaded = await session.execute(
                select(Delivery, Endpoint, WebhookEvent)
                .join(Endpoint, Endpoint.id == Delivery.endpoint_id)
                .join(WebhookEvent, WebhookEvent.id == Delivery.event_id)
                .where(Delivery.id.in_(chosen))
                .execution_options(populate_existing=True)
            )
            rows = [(d, e, ev) for d, e, ev in loaded.all()]
            await uow.commit()
        return [self._claimed(d, e, ev, token, now) for d, e, ev in rows]

    def _claimed(
        self, delivery: Delivery, endpoint: Endpoint, event: WebhookEvent, token: str, now: datetime
    ) -> Claimed:
        keys = [self.box.decrypt(endpoint.secret_encrypted)]
        if (
            endpoint.previous_secret_encrypted is not None
            and endpoint.previous_secret_expires_at is not None
            and endpoint.previous_secret_expires_at > now
        ):
            keys.append(self.box.decrypt(endpoint.previous_secret_encrypted))
        return Claimed(
            delivery_id=delivery.id,
            tenant_id=delivery.tenant_id,
            endpoint_id=endpoint.id,
            event_id=event.id,
            url=endpoint.url,
            body=event.body.encode(),
            secrets=keys,
            manual=delivery.manual,
            token=token,
            endpoint_healthy=endpoint.failing_since is None
            and endpoint.last_success_at is not None
            and now - endpoint.last_success_at < HEALTHY_WINDOW,
        )

    # -- one attempt ------------------------------------------------------------------------------

    async def attempt(self, item: Claimed) -> None:
        result = await self.send(item)
        self.metrics.attempt_latency.observe(result.latency)
        if result.refused:
            self.metrics.refused.inc()
        try:
            outcome = await self.record(item, result)
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
            outcome = await self.record(item, fallback)
        if outcome is not None:
            self.metrics.deliveries.labels(outcome).inc()

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
        """Write the attempt and the delivery's next state, only if this worker still holds the lease
        (WHK-4). Returns the delivery's outcome: succeeded, retrying or failed."""
        clear_failing = False
        redirected = result.status is not None and 300 <= result.status < 400
        verdict = judge(None if redirected else result.status, result.retry_after)
        now = utcnow()
        async with self.uow() as uow:
            session = uow.session
            # Endpoint before delivery: the order the API's endpoint updates lock in, so no deadlock.
            # The hot path (success on a healthy endpoint) skips the endpoint row entirely: locking it
            # would serialize every attempt to one endpoint behind one another (WHK-10).
            endpoint = None
            if not (verdict.succeeded and item.endpoint_healthy):
                endpoint = await uow.endpoints(item.tenant_id).get(item.endpoint_id, for_update=True)
            held = select(Delivery).where(Delivery.id == item.delivery_id, Delivery.claim_token == item.token)
            delivery = (await session.execute(held.with_for_update(key_share=True))).scalar_one_or_none()
            if delivery is None:
                log.warning("lost the lease on delivery %s; its attempt is not recorded", item.delivery_id)
                return None
            number = delivery.attempt_count + 1
            session.add(
                Attempt(
                    delivery_id=delivery.id,
                    number=number,
                    started_at=result.started_at,
                    outcome="succeeded" if verdict.succeeded else "failed",
                    status_code=result.status,
                    error=result.error,
                    latency_ms=round(result.latency * 1000),
                    response_body=result.response_body,
                    manual=item.manual,
                )
            )
            delivery.attempt_count = number
            delivery.last_attempt_at = result.started_at
            delivery.last_status_code = result.status
            delivery.last_error = result.error
            delivery.claim_token = None
            delivery.claimed_until = None
            delivery.updated_at = now
            if verdict.succeeded:
                outcome = "succeeded"
                delivery.status, delivery.next_attempt_at, delivery.manual = "succeeded", None, False
                if endpoint is not None:
                    endpoint.last_success_at = now
                    endpoint.failing_since = None
                else:
                    # Unlocked path: an attempt that failed since the claim may have set failing_since;
                    # cleared below in its own transaction, keeping the endpoint-then-delivery lock order.
                    clear_failing = True
            else:
                delay = None
                # A disabled or deleted endpoint gets no further attempts, whatever the schedule says.
                live = endpoint is not None and endpoint.enabled
                if live and not verdict.gone and not item.manual:
                    delay = next_delay(
                        self.config.schedule,
                        number,
                        jitter=self.config.jitter,
                        retry_after=verdict.retry_after,
                        max_retry_after=self.config.max_retry_after,
                    )
                if delay is None:
                    outcome = "failed"
                    delivery.status, delivery.next_attempt_at, delivery.manual = "failed", None, False
                else:
                    outcome = "retrying"
                    delivery.next_attempt_at = now + timedelta(seconds=delay)
                if endpoint is not None and endpoint.enabled:
                    if endpoint.failing_since is None:
                        endpoint.failing_since = now
                    if verdict.gone:
                        await self._disable(uow, endpoint, "gone", now)
                    elif now - endpoint.failing_since >= self.config.disable_after:
                        await self._disable(uow, endpoint, "failing", now)
            await uow.commit()
        if clear_failing:
            async with self.uow() as uow:
                await uow.endpoints(item.tenant_id).clear_failing(item.endpoint_id, now)
                await uow.commit()
        return outcome

    async def _disable(self, uow: WebhooksUnitOfWork, endpoint: Endpoint, reason: str, now: datetime) -> None:
        """Disable the endpoint, give up its pending deliveries, and tell the tenant's other endpoints
        (``endpoint.disabled``), all in the caller's transaction (WHK-6)."""
        log.warning("disabling webhook endpoint %s (%s)", endpoint.id, reason)
        endpoint.enabled = False
        endpoint.disabled_reason = reason
        endpoint.updated_at = now
        await uow.endpoints(endpoint.tenant_id).fail_pending(endpoint.id, f"endpoint disabled ({reason})", now)
        await fan_out(
            uow,
            tenant_id=endpoint.tenant_id,
            event_id=new_event_id(),
            event_type=ENDPOINT_DISABLED,
            created_at=now,
            data={
                "endpoint": {
                    "id": endpoint.id,
                    "url": endpoint.url,
                    "description": endpoint.description,
                    "disabled_reason": reason,
                    "failing_since": rfc3339(endpoint.failing_since) if endpoint.failing_since else None,
                    "disabled_at": rfc3339(now),
                }
            },
            exclude=endpoint.id,
        )

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
