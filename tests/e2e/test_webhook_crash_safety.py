"""Crash safety of the webhook dispatcher in the distributed mode: real processes, PostgreSQL, RabbitMQ.

A worker process is SIGKILLed while deliveries are in flight, while events are still being published and
while it is in the middle of ingesting (its ingest statement held up by a lock the test takes on the
inbox: that batch commits after the worker died, unacked, and the rest of the burst was received and
never committed). Then two workers are started on the same database and backlog. Every event must reach
every endpoint, verified with the reference Standard Webhooks library; a webhook is received twice only
with the same ``webhook-id`` and the same body, and only because an attempt was lost with the killed
worker (WHK-4); after the restart every attempt is received exactly once (WHK-3, two workers on one
backlog), never two at once per endpoint (WHK-8); RabbitMQ's redeliveries, and finally every event
published once more, add no delivery (WHK-1, WHK-2).

Only loopback traffic: the tenant's receiver is an aiohttp server in this test on 127.0.0.1, the only
host the dispatcher's SSRF guard lets through.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import aio_pika
import aiohttp
import asyncpg
import pytest
from aiohttp import web
from billing_contracts.events import PaymentCreatedV1, PaymentData, PaymentSnapshot
from billing_runtime.internal_auth import INTERNAL_HEADER, sign_internal
from billing_runtime.testing import PG_DSN, free_port, require_port, scratch_vhost
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from webhook_dispatcher.app import INTERNAL_AUDIENCE
from webhook_dispatcher.services.ingest import EVENTS_CONSUMER
from webhook_dispatcher.services.slots import HELD_PER_SLOT

from .load import hook_url, serving_hooks

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.postgres, pytest.mark.rabbitmq]

BIN = Path(sys.executable).parent
INTERNAL_SECRET = "crash-internal-secret-0123456789abcdef01"
FERNET_KEY = base64.urlsafe_b64encode(b"crash-fernet-key-0123456789abcde").decode()
EVENTS_QUEUE = "webhooks.events"  # the dispatcher's queue: a fixed name (see the ``rabbit`` fixture)
ROUTING_KEY = "payments.payment.created.v1"

EVENTS = 60
# Each event fans out to every endpoint. A worker holds leases on at most HELD_PER_SLOT x
# WEBHOOKS_WORKER_CONCURRENCY deliveries, hence endpoints, and an endpoint's traffic goes through one
# worker at a time (WHK-8): with more endpoints than one worker can hold, the second restarted worker is
# sure to get endpoints of its own, so both really deliver from the one backlog at the same time (with a
# few endpoints the first worker to claim takes them all and keeps them while their backlog lasts).
WORKER_CONCURRENCY = 2
# One request at a time per endpoint, across all workers (WHK-8): the receiver can then tell if two
# workers ever served one endpoint at once.
PER_ENDPOINT = 1
ENDPOINTS = HELD_PER_SLOT * WORKER_CONCURRENCY + 2
# The receiver answers after this long, so that requests are in flight when the worker is killed.
RECEIVER_DELAY = 0.03
# Events published per second: publishing spans the kill, so some events are consumed by the first
# worker, some are (pre)fetched by it and never acked, and some wait in the queue for the restart.
PUBLISH_RATE = 15.0
# Events published while the first worker's ingest is held up, right before it is killed.
BURST = 12
# The lease must exceed the request timeout (settings validation); after the kill the dead worker's
# leases block its deliveries (and, WHK-8, their endpoints) for up to this long.
REQUEST_TIMEOUT = 2
LEASE_SECONDS = 5


# -- the tenant's receiver ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    endpoint: int  # index of the endpoint (its URL path /hook/<index>)
    webhook_id: str
    body_id: str | None  # "id" in the JSON body
    body: bytes
    verified: bool
    at: float  # time.monotonic() when the request reached the handler


@dataclass
class Receiver:
    """Every endpoint of the tenant, one path each; verifies each request with its endpoint's secret."""

    secrets: dict[int, str] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)
    # (endpoint, webhook-id) of the requests being answered right now.
    in_flight: Counter[tuple[int, str]] = field(default_factory=Counter)
    # Most requests ever answered at once by one endpoint.
    max_concurrent: int = 0
    port: int = 0

    def url(self, endpoint: int) -> str:
        return hook_url(self.port, endpoint)

    async def handle(self, endpoint: int, body: bytes, headers: dict[str, str]) -> web.Response:
        webhook_id = headers.get("webhook-id", "")
        verified = False
        body_id = None
        if endpoint in self.secrets:
            try:
                body_id = Webhook(self.secrets[endpoint]).verify(body, headers)["id"]
                verified = True
            except (WebhookVerificationError, ValueError, KeyError, TypeError):
                verified = False
        self.hits.append(Hit(endpoint, webhook_id, body_id, body, verified, time.monotonic()))
        key = (endpoint, webhook_id)
        self.in_flight[key] += 1
        self.max_concurrent = max(self.max_concurrent, sum(n for (e, _), n in self.in_flight.items() if e == endpoint))
        try:
            await asyncio.sleep(RECEIVER_DELAY)
        finally:
            self.in_flight[key] -= 1
            if not self.in_flight[key]:
                del self.in_flight[key]
        return web.Response(status=200, text="ok")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()
    async with serving_hooks(state.handle) as state.port:
        yield state


# -- the dispatcher's processes -----------------------------------------------------------------------


@dataclass
class Services:
    logs_dir: Path
    env: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    _files: list[IO[bytes]] = field(default_factory=list)

    def spawn(self, name: str, role: str, **extra: str) -> None:
        self.ports[name] = free_port()
        out = (self.logs_dir / f"{name}.log").open("wb")
        self._files.append(out)
        env = {**os.environ, **self.env, **extra, "WEBHOOKS_PORT": str(self.ports[name])}
        self.procs[name] = subprocess.Popen(
            [str(BIN / "webhook-dispatcher"), role], env=env, stdout=out, stderr=subprocess.STDOUT
        )

    async def wait_ready(self, http: aiohttp.ClientSession, names: list[str], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        for name in names:
            while True:
                if self.procs[name].poll() is not None:
                    raise AssertionError(f"{name} exited with {self.procs[name].returncode} while starting")
                try:
                    async with http.get(f"http://127.0.0.1:{self.ports[name]}/readyz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"{name} not ready after {timeout}s")
                await asyncio.sleep(0.1)

    async def consumed(self, http: aiohttp.ClientSession, name: str) -> float:
        """Events the process's consumer has handed to the ingest and seen committed (duplicates too)."""
        async with http.get(f"http://127.0.0.1:{self.ports[name]}/metrics") as r:
            text = await r.text()
        m = re.search(r'^events_consumed_total\{event_type="payment.created",outcome="stored"\} (\S+)$', text, re.M)
        return float(m.group(1)) if m else 0.0

    async def delivered(self, http: aiohttp.ClientSession, name: str) -> float:
        async with http.get(f"http://127.0.0.1:{self.ports[name]}/metrics") as r:
            text = await r.text()
        m = re.search(r'^webhook_deliveries_total\{outcome="succeeded"\} (\S+)$', text, re.M)
        return float(m.group(1)) if m else 0.0

    def tails(self, chars: int = 3000) -> str:
        for f in self._files:
            f.flush()
        return "\n".join(
            f"--- {path.name} ---\n{path.read_text(errors='replace')[-chars:]}"
            for path in sorted(self.logs_dir.glob("*.log"))
        )

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for f in self._files:
            f.close()


def _dsn(database: str) -> str:
    return f"{PG_DSN.rsplit('/', 1)[0]}/{database}"


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def rabbit() -> Iterator[str]:
    """A RabbitMQ virtual host of this test's own (as the bench does): the dispatcher's queue name is
    fixed, and even within this run's vhost another test's workers could consume (or purge or delete)
    the very queue this test counts on."""
    with scratch_vhost(f"webhooks-crash-{os.getpid()}-{secrets.token_hex(3)}") as url:
        yield url


@pytest.fixture
async def services(tmp_path: Path, rabbit: str) -> AsyncIterator[Services]:
    require_port("127.0.0.1", 5432, "PostgreSQL")
    database = f"webhooks_crash_{os.getpid()}_{secrets.token_hex(3)}"
    await _admin(f'CREATE DATABASE "{database}"')
    env = {
        "WEBHOOKS_DATABASE_URL": _dsn(database).replace("postgresql://", "postgresql+asyncpg://", 1),
        "WEBHOOKS_DATABASE_POOL_SIZE": "8",
        "WEBHOOKS_BUS_URL": rabbit,
        "WEBHOOKS_INTERNAL_SECRET": INTERNAL_SECRET,
        "WEBHOOKS_ENCRYPTION_KEY": FERNET_KEY,
        # The guard stays on, as in the distributed mode; the loopback receiver is the one allowed host.
        "WEBHOOKS_SSRF_GUARD": "true",
        "WEBHOOKS_ALLOWED_HOSTS": "127.0.0.1",
        "WEBHOOKS_ALLOW_HTTP": "true",
        "WEBHOOKS_RETRY_SCHEDULE": "0,1,1,1",
        "WEBHOOKS_RETRY_JITTER": "0",
        "WEBHOOKS_REQUEST_TIMEOUT": str(REQUEST_TIMEOUT),
        "WEBHOOKS_LEASE_SECONDS": str(LEASE_SECONDS),
        "WEBHOOKS_WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
        "WEBHOOKS_MAX_CONCURRENCY_PER_ENDPOINT": str(PER_ENDPOINT),
        # Expired leases are found by polling (no NOTIFY for them): poll often.
        "WEBHOOKS_DISPATCH_POLL_INTERVAL": "0.1",
        "WEBHOOKS_LOG_LEVEL": "INFO",
    }
    svc = Services(tmp_path, env)
    try:
        migrate = await asyncio.to_thread(
            subprocess.run,
            [str(BIN / "webhook-dispatcher"), "migrate"],
            env={**os.environ, **env},
            capture_output=True,
        )
        assert migrate.returncode == 0, migrate.stdout.decode() + migrate.stderr.decode()
        yield svc
    finally:
        await asyncio.to_thread(svc.stop)
        await _admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


# -- the bus ------------------------------------------------------------------------------------------


async def _queue_state(rabbit: str) -> tuple[int, int] | None:
    """(ready messages, consumers) of the dispatcher's queue, or None if it does not exist yet."""
    connection = await aio_pika.connect(rabbit)
    async with connection:
        channel = await connection.channel()
        try:
            queue = await channel.declare_queue(EVENTS_QUEUE, passive=True)
        except aio_pika.exceptions.ChannelClosed:
            return None
        result = queue.declaration_result
        return result.message_count or 0, result.consumer_count or 0


def _events(tenant: str, n: int) -> list[tuple[str, bytes]]:
    now = datetime.now(UTC)
    out = []
    for i in range(n):
        snapshot = PaymentSnapshot(
            id=f"pay_crash{i}",
            status="CREATED",
            amount=1000 + i,
            currency="USD",
            order_id=f"order-{i}",
            created_at=now,
            updated_at=now,
            expires_at=now,
        )
        event = PaymentCreatedV1(tenant_id=tenant, data=PaymentData(payment=snapshot))
        out.append((event.event_id, event.model_dump_json().encode()))
    return out


async def _publish(
    rabbit: str, events: list[tuple[str, bytes]], rate: float | None, confirmed: list[float] | None = None
) -> None:
    """Publish with publisher confirms (each message is on the broker's disk once confirmed), at
    ``rate`` events per second, or all at once; ``confirmed`` gets the time each chunk was confirmed."""
    connection = await aio_pika.connect(rabbit)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange("billing.events", aio_pika.ExchangeType.TOPIC, durable=True)
        chunk = 3 if rate else len(events)
        started = time.monotonic()
        for n in range(0, len(events), chunk):
            if rate:
                delay = started + n / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await asyncio.gather(
                *(
                    exchange.publish(
                        aio_pika.Message(
                            body=body,
                            message_id=event_id,
                            content_type="application/json",
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        ),
                        routing_key=ROUTING_KEY,
                    )
                    for event_id, body in events[n : n + chunk]
                )
            )
            if confirmed is not None:
                confirmed.extend([time.monotonic()] * len(events[n : n + chunk]))


# -- the database -------------------------------------------------------------------------------------


@dataclass
class Stored:
    deliveries: list[asyncpg.Record]
    attempts: list[asyncpg.Record]
    bodies: dict[str, str]  # event id -> body as stored (and signed)
    inbox: int


async def _stored(database: str, tenant: str, event_ids: list[str]) -> Stored:
    conn = await asyncpg.connect(_dsn(database))
    try:
        deliveries = await conn.fetch(
            "SELECT id, event_id, endpoint_id, status, attempt_count, claim_token FROM webhook_deliveries"
            " WHERE tenant_id = $1",
            tenant,
        )
        attempts = await conn.fetch(
            "SELECT a.delivery_id, a.number, a.started_at, a.outcome, a.status_code, a.error"
            " FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id WHERE d.tenant_id = $1",
            tenant,
        )
        events = await conn.fetch("SELECT id, body FROM webhook_events WHERE tenant_id = $1", tenant)
        inbox = await conn.fetchval("SELECT count(*) FROM inbox WHERE message_id = ANY($1::varchar[])", event_ids)
    finally:
        await conn.close()
    return Stored(list(deliveries), list(attempts), {r["id"]: r["body"] for r in events}, int(inbox))


# The dead worker's ingest statement (it starts with the inbox insert), waiting on the test's rows / still
# running; the probe's own query is left out.
_BLOCKED_INGEST = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    " AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO inbox%'"
)
_INGEST_SESSIONS = (
    "SELECT pid, state, wait_event_type, wait_event FROM pg_stat_activity WHERE datname = current_database()"
    " AND pid <> pg_backend_pid() AND query LIKE '%INSERT INTO inbox%' ORDER BY pid"
)
_ACTIVE_INGEST = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    " AND state = 'active' AND query LIKE '%INSERT INTO inbox%'"
)


async def _stored_event_ids(conn: asyncpg.Connection, tenant: str) -> list[str]:
    return [r["id"] for r in await conn.fetch("SELECT id FROM webhook_events WHERE tenant_id = $1", tenant)]


async def _eventually(
    what: str, check: Callable[[], Awaitable[bool] | bool], timeout: float, interval: float = 0.1
) -> None:
    async def done() -> bool:
        result = check()
        return await result if inspect.isawaitable(result) else result

    deadline = time.monotonic() + timeout
    while not await done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for: {what}")
        await asyncio.sleep(interval)


# -- the test -----------------------------------------------------------------------------------------


async def test_killed_worker_loses_nothing_and_two_workers_send_each_attempt_once(
    services: Services, receiver: Receiver
) -> None:
    rabbit = services.env["WEBHOOKS_BUS_URL"]
    database = services.env["WEBHOOKS_DATABASE_URL"].rsplit("/", 1)[1]
    tenant = f"ten_crash{secrets.token_hex(8)}"  # only this test's events fan out to its endpoints
    started = time.monotonic()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        try:
            await _run(services, receiver, http, rabbit, database, tenant)
        except AssertionError as exc:
            try:
                state: object = await _queue_state(rabbit)
            except Exception as error:  # the broker itself may be what went away
                state = error
            raise AssertionError(
                f"{exc}\n(after {time.monotonic() - started:.1f}s; {EVENTS_QUEUE} ready/consumers: {state})\n"
                f"{services.tails()}"
            ) from exc
    print(f"\ncrash-safety scenario took {time.monotonic() - started:.1f}s")


async def _run(
    services: Services, receiver: Receiver, http: aiohttp.ClientSession, rabbit: str, database: str, tenant: str
) -> None:
    services.spawn("api", "api")
    # Its ingest one self-committing statement, as the committed-but-unacked case below needs (leasing at
    # ingest makes it a transaction, which a kill rolls back); the two workers started after it lease.
    services.spawn("worker-1", "worker", WEBHOOKS_LEASE_AT_INGEST="false")
    await services.wait_ready(http, ["api", "worker-1"])

    # The tenant's endpoints, over the dispatcher's internal API (as the gateway calls it).
    endpoint_index: dict[str, int] = {}
    for i in range(ENDPOINTS):
        token = sign_internal(INTERNAL_SECRET, issuer="gateway", audience=INTERNAL_AUDIENCE, tenant_id=tenant)
        async with http.post(
            f"http://127.0.0.1:{services.ports['api']}/v1/webhook-endpoints",
            json={"url": receiver.url(i), "events": ["payment.created"], "description": f"crash {i}"},
            headers={INTERNAL_HEADER: token},
        ) as r:
            assert r.status == 201, await r.text()
            created = await r.json()
        assert created["secret"].startswith("whsec_")
        receiver.secrets[i] = created["secret"]
        endpoint_index[created["id"]] = i

    events = _events(tenant, EVENTS)
    event_ids = [event_id for event_id, _ in events]
    expected = {(i, event_id) for i in range(ENDPOINTS) for event_id in event_ids}
    # Most events are published at a steady pace that spans the kill; the last BURST ones while the
    # worker's ingest is held up, just before it is killed.
    paced, burst = events[:-BURST], events[-BURST:]
    confirmed: list[float] = []
    publishing = asyncio.create_task(_publish(rabbit, paced, PUBLISH_RATE, confirmed))

    # -- kill the worker mid-flight ---------------------------------------------------------------
    async def some_delivered() -> bool:
        if publishing.done():
            publishing.result()  # surface a publishing error at once
        return len(receiver.hits) >= 0.2 * len(expected)

    await _eventually("20 % of the deliveries received", some_delivered, timeout=30, interval=0.01)
    # The worker also dies in the middle of ingesting: the first part of the burst has uncommitted inbox
    # rows of the test's own (deliveries go on, they never touch the inbox), so the worker's ingest
    # statement for it waits on those rows, and the rest of the burst waits in the worker for that
    # statement. None of these messages may have been acked: a consumer that acked on receipt rather than
    # after its commit would lose the second part. Row locks, not a table lock: a table lock would also
    # block the statement's parse (it takes the inserts' table locks), and a statement the dead worker
    # had only parsed would never run; rows are waited for only once the statement executes.
    locker = await asyncpg.connect(_dsn(database))
    probe = await asyncpg.connect(_dsn(database))
    try:
        lock = locker.transaction()
        await lock.start()
        await locker.execute(
            "INSERT INTO inbox (consumer, message_id, received_at) SELECT $1, i, now() FROM unnest($2::varchar[]) AS i",
            EVENTS_CONSUMER,
            [event_id for event_id, _ in burst[: BURST // 2]],
        )

        async def ingest_blocked() -> bool:
            return bool(await probe.fetchval(_BLOCKED_INGEST))

        async def ingest_sessions() -> list[str]:
            # What the worker's ingest statements are doing, for the premise's failure message below.
            rows = await probe.fetch(_INGEST_SESSIONS)
            return [f"pid {r['pid']} {r['state']} {r['wait_event_type']}/{r['wait_event']}" for r in rows]

        await _publish(rabbit, burst[: BURST // 2], None)
        await _eventually("the worker's ingest to wait on the inbox lock", ingest_blocked, timeout=10)
        await _publish(rabbit, burst[BURST // 2 :], None)
        blocked_sessions = await ingest_sessions()

        async def taken_by_worker() -> bool:
            return (await _queue_state(rabbit) or (1, 0))[0] == 0

        await _eventually("the burst to be pushed to the worker", taken_by_worker, timeout=10)
        await asyncio.sleep(0.3)  # and handed to its consumer's handler
        # Then killed at a moment when requests are in flight (the receiver is still answering them).
        await _eventually("a request in flight", lambda: bool(receiver.in_flight), timeout=10, interval=0.002)
        worker = services.procs["worker-1"]
        worker.kill()
        killed_at = time.monotonic()
        in_flight_at_kill = set(receiver.in_flight)
        hits_at_kill = len(receiver.hits)
        await asyncio.wait_for(asyncio.to_thread(worker.wait), timeout=10)
        # Back in the queue: the dead consumer's unacked messages, the whole burst at least.
        ready_after_kill = (await _queue_state(rabbit) or (0, 0))[0]
        stored_before = set(await _stored_event_ids(probe, tenant))
        sessions_after_kill = await ingest_sessions()
        # The dead worker's statement still waits in PostgreSQL, which does not notice a vanished client
        # while a statement waits on a lock: once the test's rows are rolled back it runs and commits
        # (its Sync is already in the server's buffer), so the events of
        # that batch are stored although their messages were never acked. RabbitMQ redelivers them to
        # the new workers, whose inbox must absorb them (WHK-2).
        await lock.rollback()

        async def zombie_done() -> bool:
            return not await probe.fetchval(_ACTIVE_INGEST)

        await _eventually("the dead worker's ingest statement to end", zombie_done, timeout=10)
        committed_unacked = set(await _stored_event_ids(probe, tenant)) - stored_before
    finally:
        await locker.close()
        await probe.close()
    assert ready_after_kill >= BURST, f"only {ready_after_kill} messages back in the queue after the kill"
    # The premise of the redelivery-after-commit case (it relies on the ingest being one self-committing
    # statement, worker-1's; were it BEGIN ... COMMIT, the dead worker's transaction would simply roll back).
    assert committed_unacked, (
        "the dead worker's blocked ingest stored nothing: no committed, unacked event"
        f" (ingest sessions while blocked: {blocked_sessions}; after the kill: {sessions_after_kill};"
        f" {len(stored_before)} of the tenant's events stored before the lock was released)"
    )
    # Requests the dead worker wrote before dying may still sit in this process's socket buffers: let the
    # receiver read them, so that every hit before the boundary is the dead worker's and every hit after
    # it is the new workers' (which cannot send anything before they are started, right after it).
    await asyncio.sleep(0.5)
    boundary = time.monotonic()
    boundary_wall = datetime.now(UTC)
    hits_before_restart = len(receiver.hits)
    assert hits_before_restart < len(expected), "everything arrived before the kill: nothing was in flight"

    # -- restart: two workers on the same database and backlog ------------------------------------
    services.spawn("worker-2", "worker")
    services.spawn("worker-3", "worker")
    await services.wait_ready(http, ["worker-2", "worker-3"])
    await publishing

    async def all_done() -> bool:
        received = {(h.endpoint, h.webhook_id) for h in receiver.hits}
        if not expected <= received:
            return False
        stored = await _stored(database, tenant, event_ids)
        # More rows than (event, endpoint) pairs will never go away: say so now rather than time out.
        rows = len(stored.deliveries)
        assert rows <= len(expected), (
            f"{rows} deliveries for {len(expected)} (event, endpoint) pairs: an event was"
            " fanned out twice (redelivered or republished message not absorbed by the inbox)"
        )
        # The receiver sees a request before the dispatcher records its answer: wait for the records.
        return len(stored.deliveries) == len(expected) and all(
            d["status"] != "pending" and d["claim_token"] is None for d in stored.deliveries
        )

    await _eventually("every event delivered to every endpoint and recorded", all_done, timeout=60, interval=0.2)
    done_at = time.monotonic()
    hits_when_done = len(receiver.hits)

    # -- the same events once more: the inbox must make them no-ops (WHK-2) ------------------------
    # As a crashed publisher's outbox relay would resend them, and as RabbitMQ redelivers whatever the
    # killed consumer had not acked. The consumers' metrics tell when the copies have been ingested.
    before = sum([await services.consumed(http, w) for w in ("worker-2", "worker-3")])
    await _publish(rabbit, events, None)

    async def copies_ingested() -> bool:
        return sum([await services.consumed(http, w) for w in ("worker-2", "worker-3")]) >= before + EVENTS

    # A copy the inbox does not absorb fails its ingest, is redelivered and finally dead-lettered: then
    # this waits in vain (the workers' logs say why). One it absorbs wrongly makes a second delivery.
    await _eventually(
        "the republished events to be ingested (a copy the inbox does not absorb fails its ingest)",
        copies_ingested,
        timeout=30,
        interval=0.1,
    )
    # A new delivery would wake a worker at once (NOTIFY), and polling runs every 0.1 s besides.
    await asyncio.sleep(1.0)
    stored = await _stored(database, tenant, event_ids)
    per_worker = {w: await services.delivered(http, w) for w in ("worker-2", "worker-3")}

    # -- assertions ---------------------------------------------------------------------------------
    # The scenario really had two workers delivering from one backlog (see ENDPOINTS).
    assert all(n > 0 for n in per_worker.values()), f"a restarted worker delivered nothing: {per_worker}"
    hits = receiver.hits
    hits_now = len(hits)
    assert hits_now == hits_when_done, f"republished events were delivered again: {hits_now - hits_when_done} requests"

    # Every request was signed for its endpoint, carries the event id as webhook-id, and is a known event.
    assert all(h.verified for h in hits), [h for h in hits if not h.verified][:3]
    assert all(h.body_id == h.webhook_id for h in hits), "webhook-id differs from the body's id"
    # Nothing lost, nothing forged: exactly the published events, at every endpoint.
    assert {(h.endpoint, h.webhook_id) for h in hits} == expected

    # The events were stored once each, with the bytes every request carried (a re-sent attempt sends
    # the same body, WHK-4), and each event id has exactly one inbox row.
    assert sorted(stored.bodies) == sorted(event_ids)
    assert stored.inbox == EVENTS
    for h in hits:
        assert h.body == stored.bodies[h.webhook_id].encode(), f"body of {h.webhook_id} differs from the stored one"

    # Exactly one delivery per (event, endpoint), all succeeded and released; RabbitMQ's redeliveries
    # and the republished copies added none (WHK-1, WHK-2).
    keys = Counter((endpoint_index[d["endpoint_id"]], d["event_id"]) for d in stored.deliveries)
    assert set(keys) == expected and set(keys.values()) == {1}, [k for k, n in keys.items() if n != 1][:5]
    assert {d["status"] for d in stored.deliveries} == {"succeeded"}
    assert all(d["claim_token"] is None for d in stored.deliveries)

    # Each delivery's attempt log: numbered 1..n with no gap or repeat, n = attempt_count, the last one
    # succeeded (a lost attempt is not logged: the dead worker could not record it, WHK-4).
    delivery_key = {d["id"]: (endpoint_index[d["endpoint_id"]], d["event_id"]) for d in stored.deliveries}
    attempts_of: dict[tuple[int, str], list[asyncpg.Record]] = {k: [] for k in expected}
    for a in stored.attempts:
        attempts_of[delivery_key[a["delivery_id"]]].append(a)
    for d in stored.deliveries:
        logged = sorted(attempts_of[delivery_key[d["id"]]], key=lambda a: a["number"])
        assert [a["number"] for a in logged] == list(range(1, d["attempt_count"] + 1)), (d, logged)
        assert logged[-1]["outcome"] == "succeeded" and logged[-1]["status_code"] == 200, logged

    # Hits against attempts, on each side of the restart. Before it only the killed worker sent; after
    # it only the two new ones. Attempt start times are the workers' clocks (this machine's).
    pre_hits = Counter((h.endpoint, h.webhook_id) for h in hits if h.at < boundary)
    post_hits = Counter((h.endpoint, h.webhook_id) for h in hits if h.at >= boundary)
    pre_attempts = Counter(k for k, logged in attempts_of.items() for a in logged if a["started_at"] < boundary_wall)
    post_attempts = Counter(k for k, logged in attempts_of.items() for a in logged if a["started_at"] >= boundary_wall)
    # After the restart, with two workers on one backlog, every attempt made was received exactly once
    # and logged: no attempt sent by both workers, none sent twice, none sent without its log (WHK-3).
    twice = {k: (post_hits[k], post_attempts[k]) for k in expected if post_hits[k] != post_attempts[k]}
    assert not twice, f"after the restart, hits != logged attempts for {len(twice)}: {list(twice.items())[:5]}"
    # Before the kill, at most one attempt per delivery was lost with the dead worker (sent, never logged):
    # the one its lease covered when it died.
    lost = {k for k in expected if pre_hits[k] - pre_attempts[k] == 1}
    wrong = {k: (pre_hits[k], pre_attempts[k]) for k in expected if pre_hits[k] - pre_attempts[k] not in (0, 1)}
    assert not wrong, f"before the kill, hits - logged attempts not in {{0, 1}}: {list(wrong.items())[:5]}"
    # Every request the worker never saw answered (being answered when it was killed, or still in this
    # process's socket buffers then) was such a lost attempt, and every lost attempt was made again after
    # the restart, under the same webhook-id (WHK-4): the only duplicates the receiver ever sees.
    assert in_flight_at_kill, "no request was in flight at the kill"
    unanswered = in_flight_at_kill | {(h.endpoint, h.webhook_id) for h in hits if killed_at <= h.at < boundary}
    assert unanswered <= lost, sorted(unanswered - lost)[:5]
    assert all(post_attempts[k] >= 1 for k in lost), [k for k in lost if not post_attempts[k]][:5]
    duplicated = {k for k, n in Counter((h.endpoint, h.webhook_id) for h in hits).items() if n > 1}
    failed_attempts = sum(1 for a in stored.attempts if a["outcome"] != "succeeded")
    if not failed_attempts:
        # Without any failed attempt (the receiver always answers 200 well within the timeout), a
        # duplicate is exactly an attempt lost with the killed worker; and no endpoint ever had more
        # requests at once than its cap (a timed-out request could still be running at the receiver
        # when the next attempt comes: only then may they overlap).
        assert duplicated == lost, (sorted(duplicated - lost)[:5], sorted(lost - duplicated)[:5])
        most = receiver.max_concurrent
        assert most <= PER_ENDPOINT, f"{most} requests at once to one endpoint (cap {PER_ENDPOINT}, WHK-8)"

    print(
        f"\n{EVENTS} events x {ENDPOINTS} endpoints; {sum(t > killed_at for t in confirmed)} events published"
        f" after the kill; {ready_after_kill} messages back in the queue after the kill;"
        f" {len(committed_unacked)} events committed by the dead worker's statement, never acked;"
        f" worker-1 killed after {hits_at_kill} hits with"
        f" {len(in_flight_at_kill)} in flight; {hits_before_restart} hits before the restart;"
        f" {len(lost)} attempts lost with it and re-sent; {len(duplicated)} duplicated (endpoint, webhook-id);"
        f" {failed_attempts} failed attempts; done {done_at - boundary:.1f}s after the restart;"
        f" deliveries succeeded per new worker: {per_worker}"
    )
