"""A database taken away for 30 s while payments flow (issue 9, item 1): nothing lost, nothing stuck.

Real processes on real PostgreSQL and RabbitMQ, on databases and a RabbitMQ vhost of each case's own. A
tenant creates sandbox payments through the gateway at a steady rate and a payer pays each one on the
sandbox provider's page (succeed, decline, or stay pending then succeed) after some thinking time, so
provider outcomes are in flight all through the outage. The tenant's receiver on loopback verifies every
webhook with the reference Standard Webhooks library. Both act as API.md tells clients to: a 503 is
retried (with the same Idempotency-Key), anything else unexpected fails the case.

Then one service's database refuses connections for 30 s (``ALTER DATABASE ... ALLOW_CONNECTIONS false``
and its backends terminated: ``CONNECTION LIMIT 0`` does not stop a superuser) and is given back. After
it: every payment is in its final state, every event of the tenant's log reached each endpoint exactly
once, every dead-letter queue is empty, no process answered a 500 (503s are counted), and events flow
again promptly after the database is back (measured).

The embedded mode runs on the PostgreSQL server it starts itself: its outage is the same, on the
payments database of that server (reached on its Unix socket).
"""

from __future__ import annotations

import asyncio
import random
import re
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from billing_embedded.database import DatabaseServer
from billing_runtime.testing import PG_DSN

from .load import (
    FINAL_TYPES,
    Platform,
    Receiver,
    Traffic,
    drained_queues,
    own_databases,
    own_vhost,
    print_logs,
    receiving,
    undelivered,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.rabbitmq,
    pytest.mark.timeout(240),
]

PAYMENTS = 250  # distributed; the embedded mode (one process on 2 shared cores) does fewer
RATE = 25.0  # payments started per second
OUTAGE_AT = 3.0  # seconds after the first payment
OUTAGE_SECONDS = 30.0
THINK = (0.0, 6.0)  # the payer's seconds between the provider's page and pressing a button
ENDPOINTS = 2
# Retry-After says 5 s; a tenant that waits less shows sooner when the database is back (jittered).
RETRY_PAUSE = (0.5, 1.5)
# Today's failures were 16 s (relay backoff) and up to 35 s (a leased batch); "within 2 s" is the aim,
# and the bound leaves room for a loaded 2-core machine while still catching a backoff that oversleeps.
RECOVERY_BOUND = 5.0
SETTLE_DEADLINE = 60.0  # after the database is back, for every payment and webhook to arrive

# The platform as a busy tenant sees it: no rate limit in the way, the sandbox bank retrying its
# callbacks every second (a provider's own schedule; ours would put up to 30 s between attempts); small
# pools, as the PostgreSQL server's 100 connections are shared with other test runs.
OVERRIDES = {
    "gateway": {"GATEWAY_RATE_LIMIT_PER_SECOND": "0", "GATEWAY_DATABASE_POOL_SIZE": "3"},
    "providers": {
        "PROVIDERS_SANDBOX_PENDING_DELAY": "4",
        "PROVIDERS_SANDBOX_CALLBACK_RETRY_SCHEDULE": "0.5,1",
        "PROVIDERS_DATABASE_POOL_SIZE": "5",
    },
    "payments": {"PAYMENTS_OUTBOX_POLL_INTERVAL": "0.5", "PAYMENTS_DATABASE_POOL_SIZE": "4"},
    "webhooks": {"WEBHOOKS_DATABASE_POOL_SIZE": "5"},
}


# -- the tenant and its payers (the load is tests/e2e/load.py) ----------------------------------------


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as state:
        yield state


async def _dashboard(traffic: Traffic, until: asyncio.Event) -> None:
    """The tenant's dashboard reading what each service serves, a few times a second, all through the
    outage: one attempt each (a 503 is fine), so every service's read path is seen answering."""
    g = traffic.platform.gateway_url
    paths = [
        "/v1/payments?limit=5",
        "/v1/events?limit=5",
        "/v1/webhook-deliveries?limit=5",
        "/v1/webhook-endpoints",
    ]
    while not until.is_set():
        for path in paths:
            try:
                async with traffic.http.get(f"{g}{path}", headers=traffic.auth) as r:
                    traffic.statuses[r.status] += 1
                    if r.status == 503:
                        traffic.check_unavailable(f"{g}{path}", dict(r.headers))
                    if r.status == 500:
                        request = f"GET {path}: {(await r.read())[:200]!r}"
                        traffic.server_errors.append((time.monotonic(), 500, request))
                    elif r.status not in (200, 503):
                        traffic.failures.append(f"GET {path} -> {r.status}: {(await r.read())[:300]!r}")
            except (aiohttp.ClientError, TimeoutError):
                traffic.connection_errors += 1
        await asyncio.sleep(0.25)


# -- what each process says about itself ----------------------------------------------------------------

_HTTP_LINE = re.compile(r"^http_requests_total\{([^}]*)\} (\S+)$", re.M)
_DEAD_LINE = re.compile(r'^dead_letters\{queue="([^"]*)"\} (\S+)$', re.M)


async def _scrape(http: aiohttp.ClientSession, platform: Platform) -> dict[str, str]:
    texts = {}
    for name, port in platform.ports.items():
        # The gateway's /metrics is for operators (API.md "Operations"): the admin token opens it.
        headers = {"Authorization": f"Bearer {platform.admin_token}"}
        try:
            async with http.get(f"http://127.0.0.1:{port}/metrics", headers=headers) as r:
                if r.status == 200:
                    texts[name] = await r.text()
        except aiohttp.ClientError:
            continue
    return texts


def _server_errors(texts: dict[str, str]) -> dict[str, Counter[str]]:
    """5xx answers each process counted, by status and route."""
    out: dict[str, Counter[str]] = {}
    for name, text in texts.items():
        for labels, value in _HTTP_LINE.findall(text):
            status = re.search(r'status="(\d+)"', labels)
            route = re.search(r'route="([^"]*)"', labels)
            if status and status.group(1).startswith("5") and float(value):
                key = f"{status.group(1)} {route.group(1) if route else '?'}"
                out.setdefault(name, Counter())[key] += int(float(value))
    return out


def _dead_letter_gauges(texts: dict[str, str]) -> dict[str, float]:
    return {f"{name}:{queue}": float(v) for name, text in texts.items() for queue, v in _DEAD_LINE.findall(text)}


async def _embedded_dead_letters(data: Path) -> dict[str, int]:
    """Outbox rows the in-process bus marked dead, per service database of the embedded server."""
    server = DatabaseServer(data)
    out = {}
    for database in ("payments", "providers", "webhooks"):
        conn = await asyncpg.connect(server.dsn(database))
        try:
            out[database] = await conn.fetchval("SELECT count(*) FROM outbox WHERE dead_at IS NOT NULL")
        finally:
            await conn.close()
    return out


# -- taking a database away ---------------------------------------------------------------------------


async def _admin(sql: str, *args: object, dsn: str = PG_DSN) -> None:
    # The server is shared with other test runs: when all its connection slots are taken, wait for one.
    for attempt in range(40):
        try:
            conn = await asyncpg.connect(dsn)
            break
        except asyncpg.TooManyConnectionsError:
            if attempt == 39:
                raise
            await asyncio.sleep(0.25)
    try:
        await conn.execute(sql, *args)
    finally:
        await conn.close()


class PostgresOutage:
    """``database`` on the server at ``dsn`` (the shared one, or the embedded mode's) refusing every
    connection until ``end``."""

    def __init__(self, database: str, dsn: str = PG_DSN) -> None:
        self.database = database
        self.dsn = dsn
        self.active = False

    async def begin(self) -> None:
        # First no new connection, then none of the existing ones.
        self.active = True
        await _admin(f'ALTER DATABASE "{self.database}" ALLOW_CONNECTIONS false', dsn=self.dsn)
        await _admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", self.database, dsn=self.dsn
        )

    async def end(self) -> None:
        if self.active:
            await _admin(f'ALTER DATABASE "{self.database}" ALLOW_CONNECTIONS true', dsn=self.dsn)
            self.active = False


# -- the scenario -------------------------------------------------------------------------------------


@dataclass
class Report:
    case: str
    payments: int = 0
    final: int = 0
    stuck: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    five_hundreds: int = 0
    client_timeouts: int = 0
    server_errors: dict[str, Counter[str]] = field(default_factory=dict)
    webhooks_expected: int = 0
    webhooks_delivered: int = 0
    webhooks_missing: int = 0
    webhooks_duplicated: int = 0
    unverified: int = 0
    dead_letters: dict[str, int | float] = field(default_factory=dict)
    webhook_recovery: float | None = None
    outcome_recovery: float | None = None
    failures: list[str] = field(default_factory=list)

    def line(self) -> str:
        def secs(v: float | None) -> str:
            return "n/a" if v is None else f"{v:.2f}s"

        return (
            f"\n[{self.case}] payments final {self.final}/{self.payments}, stuck {dict(self.stuck) or 0};"
            f" 500s {self.five_hundreds} (processes: {self.server_errors or 'none'}), 503s {self.statuses[503]},"
            f" requests {sum(self.statuses.values())}, no answer {self.client_timeouts};"
            f" webhooks delivered {self.webhooks_delivered}/{self.webhooks_expected}, missing"
            f" {self.webhooks_missing}, duplicated {self.webhooks_duplicated}, unverified {self.unverified};"
            f" dead letters {sum(self.dead_letters.values()):g} {self.dead_letters or ''};"
            f" recovery: first webhook {secs(self.webhook_recovery)}, first outcome applied"
            f" {secs(self.outcome_recovery)} after the database was back; flow failures {len(self.failures)}"
        )


def _time(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


async def _scenario(
    case: str,
    platform: Platform,
    outage: PostgresOutage,
    receiver: Receiver,
    http: aiohttp.ClientSession,
    payments: int,
) -> Report:
    traffic = Traffic(http, platform, label="outage", think=THINK, retry_pause=RETRY_PAUSE)
    await traffic.sign_up("Outage shop", receiver, ENDPOINTS)
    report = Report(case)
    rng = random.Random(9)
    started = time.monotonic()
    flows = [asyncio.create_task(traffic.flow(i, rng, started + i / RATE)) for i in range(payments)]
    flows_done = asyncio.Event()
    dashboard = asyncio.create_task(_dashboard(traffic, flows_done))

    await asyncio.sleep(max(0.0, started + OUTAGE_AT - time.monotonic()))
    await outage.begin()
    await asyncio.sleep(OUTAGE_SECONDS)
    await outage.end()
    back = time.time()

    await asyncio.gather(*flows)
    flows_done.set()
    await dashboard
    report.failures = traffic.failures + [f"503 without Retry-After/problem+json: {b}" for b in traffic.bad_unavailable]
    report.payments = len(traffic.expected)

    status, log, wanted = await traffic.settle(receiver, ENDPOINTS, SETTLE_DEADLINE)
    await asyncio.sleep(1.5)  # a duplicate would come now, if at all

    report.final = sum(status.get(pid) == final for pid, final in traffic.expected.items())
    report.stuck = Counter(
        f"{status.get(pid)} (want {final})" for pid, final in traffic.expected.items() if status.get(pid) != final
    )
    report.statuses = traffic.statuses
    report.five_hundreds = traffic.statuses[500]
    report.client_timeouts = traffic.connection_errors
    texts = await _scrape(http, platform)
    report.server_errors = {n: c for n, c in _server_errors(texts).items() if any(k.startswith("500") for k in c)}

    counts = Counter((h.endpoint, h.webhook_id) for h in receiver.hits)
    report.webhooks_expected = len(wanted)
    report.webhooks_delivered = len(set(counts) & wanted)
    report.webhooks_missing = len(wanted - set(counts))
    report.webhooks_duplicated = sum(n - 1 for n in counts.values() if n > 1)
    report.unverified = sum(h.event is None for h in receiver.hits)
    unknown = set(counts) - wanted - {(h.endpoint, h.webhook_id) for h in receiver.hits if h.event is None}
    assert not unknown, f"webhooks of events not in the tenant's log: {sorted(unknown)[:5]}"

    # Recovery: the first webhook after the database was back (nothing reaches a receiver while the
    # payments' or the dispatcher's database is away), and the first provider outcome applied to a
    # payment after it (the event's time is when payments-svc committed it).
    after = [h.at for h in receiver.hits if h.at > back]
    report.webhook_recovery = min(after) - back if after else None
    outcomes = [_time(ev["created_at"]) for ev in log if ev["type"] in FINAL_TYPES.values()]
    applied_after = [t for t in outcomes if t > back]
    report.outcome_recovery = min(applied_after) - back if applied_after else None
    report.dead_letters = _dead_letter_gauges(texts)
    return report


def _assert(report: Report, outage_type: str) -> None:
    print(report.line())
    assert not report.failures, report.failures[:5]
    assert report.five_hundreds == 0 and not report.server_errors, (report.five_hundreds, report.server_errors)
    assert report.statuses[503] > 0, "the outage was never seen: nothing tested"
    assert report.payments > 0 and report.final == report.payments, report.stuck
    assert report.unverified == 0
    assert report.webhooks_missing == 0 and report.webhooks_duplicated == 0
    assert not any(report.dead_letters.values()), report.dead_letters
    assert report.webhook_recovery is not None and report.webhook_recovery < RECOVERY_BOUND
    if outage_type in ("payments", "providers"):
        # Outcomes wait for this database; the dispatcher's outage does not hold them up.
        assert report.outcome_recovery is not None and report.outcome_recovery < RECOVERY_BOUND


@pytest.fixture
def vhost() -> Iterator[tuple[str, str]]:
    with own_vhost("outages") as name_and_url:
        yield name_and_url


@pytest.fixture
def distributed(tmp_path: Path, vhost: tuple[str, str], distributed_starter: Any) -> Iterator[Platform]:
    """The distributed platform on databases and a vhost of this test's own (it takes one away)."""
    with distributed_starter(tmp_path, vhost[1], own_databases("outage"), OVERRIDES) as p:
        yield p


@pytest.fixture
def embedded(tmp_path: Path, embedded_starter: Any) -> Iterator[Platform]:
    start, ports = embedded_starter
    env = {
        "GATEWAY_RATE_LIMIT_PER_SECOND": "0",
        "PROVIDERS_SANDBOX_PENDING_DELAY": "4",
        "PROVIDERS_SANDBOX_CALLBACK_RETRY_SCHEDULE": "0.5,1",
    }
    platform = start(tmp_path, ports(), secrets.token_urlsafe(24), env)
    yield platform
    platform.stop()


@pytest.mark.parametrize("database", ["payments", "webhooks", "providers"])
async def test_distributed_database_outage(
    database: str, distributed: Platform, vhost: tuple[str, str], receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    outage = PostgresOutage(distributed.databases[database])
    try:
        report = await _scenario(f"distributed, {database} database", distributed, outage, receiver, http, PAYMENTS)
    finally:
        await outage.end()  # idempotent; the databases must be droppable at teardown
    # Every event is delivered by now, but a queue may still hold messages for a moment.
    queues = await drained_queues(vhost[0], within=20)
    left = undelivered(queues)
    report.dead_letters.update({q: n for q, n in queues.items() if q.endswith(".dlq")})
    try:
        _assert(report, database)
        assert not left, f"messages left in queues: {left}"
    except AssertionError:
        print_logs(distributed)
        raise


async def test_embedded_database_outage(
    embedded: Platform, tmp_path: Path, receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    outage = PostgresOutage("payments", DatabaseServer(tmp_path).dsn("postgres"))
    try:
        report = await _scenario("embedded, payments database away", embedded, outage, receiver, http, PAYMENTS // 2)
    finally:
        await outage.end()
    report.dead_letters.update({f"outbox:{k}": v for k, v in (await _embedded_dead_letters(tmp_path)).items()})
    try:
        _assert(report, "payments")
    except AssertionError:
        print_logs(embedded)
        raise
