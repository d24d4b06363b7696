"""Graceful shutdown of every process role under load (issue 14): nothing lost, nothing done twice.

The distributed platform on databases and a RabbitMQ vhost of this test's own. A tenant creates sandbox
payments through the gateway at a steady rate, and a payer pays each one on the sandbox provider's page
(succeed, decline, or stay pending then succeed) after some thinking time; the tenant's two webhook
endpoints (a receiver on loopback that verifies every signature with the reference Standard Webhooks
library) answer slowly, so deliveries are in flight. Both act as API.md tells clients to: a 503, 502,
504 or a refused connection is retried (the same Idempotency-Key), anything else unexpected fails.

Every process role runs as a process of its own, as docker-compose.yml and k8s/ deploy them (the case
checks that its processes are exactly the commands both deploy): the gateway, checkout, and the api and
the worker of payments-svc, providers-svc, the dispatcher and reconciliation-svc. The platform admin
meanwhile reads reconciliation's discrepancies through the gateway (the one caller of reconciliation's
api), so that process too has requests in flight.

Each process in turn gets SIGTERM mid-load: its ``/readyz`` must answer 503 ``draining`` during the
pre-drain delay, it must exit 0 within its grace period, and a replacement is started on the same port.
At the end: every payment reached its final state, also in reconciliation's projection (fed by its
worker), every event of the tenant's log reached each endpoint exactly once (by webhook-id) and verified,
no payment has an event twice, no queue holds a message or a dead letter, no answer was a 500, and every
5xx was a 503 inside the restart window of the role being restarted.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import yaml
from billing_runtime.testing import PG_DSN

from .load import (
    FINAL_TYPES,
    FlowFailed,
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
    pytest.mark.timeout(600),
]

# In the order they are stopped: the back first, the public entry last (while it restarts every
# request is refused, which the clients retry). Every process of the platform, each role on its own.
ROLES = [
    "webhooks-worker",
    "payments-worker",
    "providers-worker",
    "reconciliation-worker",
    "providers-api",
    "reconciliation-api",
    "payments-api",
    "webhooks-api",
    "checkout",
    "gateway",
]
GRACE = 20.0  # every process's grace period here (the default is 30 s)
DELAY = 2.0  # every process's pre-drain delay here (default 0; Kubernetes: about 5 s)
RATE = 2.0  # payments started per second, all through the restarts
STEADY = 3.0  # seconds of load before each SIGTERM (the replacement is ready by then)
THINK = (0.0, 2.0)  # the payer's seconds on the provider's page
ENDPOINTS = 2
BACK_OFFICE_PAUSE = 0.5  # seconds between the admin's reads of reconciliation's discrepancies
RECEIVER_DELAY = 0.2  # the receiver answers after this long: deliveries are in flight at each SIGTERM
RETRY_PAUSE = (0.3, 1.0)
SETTLE_DEADLINE = 120.0  # after the last restart, for every payment and webhook to arrive
# 503s are expected while a role restarts, and a little after its replacement is ready (a caller's
# pooled connection to the process that left is found closed on its next use).
WINDOW_SLACK = 5.0

_SERVICES = ("gateway", "payments", "providers", "webhooks", "reconciliation")
OVERRIDES: dict[str, dict[str, str]] = {
    svc: {
        f"{prefix}_SHUTDOWN_GRACE_SECONDS": str(GRACE),
        f"{prefix}_SHUTDOWN_DELAY_SECONDS": str(DELAY),
    }
    for svc, prefix in zip(_SERVICES, ("GATEWAY", "PAYMENTS", "PROVIDERS", "WEBHOOKS", "RECONCILIATION"), strict=True)
}
OVERRIDES["checkout"] = {"CHECKOUT_SHUTDOWN_GRACE_SECONDS": str(GRACE), "CHECKOUT_SHUTDOWN_DELAY_SECONDS": str(DELAY)}
# As in test_outages: no rate limit in the way, the bank retrying its callbacks every second, small pools.
OVERRIDES["gateway"].update({"GATEWAY_RATE_LIMIT_PER_SECOND": "0", "GATEWAY_DATABASE_POOL_SIZE": "3"})
OVERRIDES["providers"].update(
    {
        "PROVIDERS_SANDBOX_PENDING_DELAY": "2",
        "PROVIDERS_SANDBOX_CALLBACK_RETRY_SCHEDULE": "0.5,1",
        "PROVIDERS_DATABASE_POOL_SIZE": "5",
    }
)
OVERRIDES["payments"].update({"PAYMENTS_DATABASE_POOL_SIZE": "4"})
OVERRIDES["webhooks"].update({"WEBHOOKS_DATABASE_POOL_SIZE": "5"})


ROOT = Path(__file__).resolve().parents[2]


def deployed_commands() -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """The (program, role) of every long-running container docker-compose.yml runs, and of every
    Deployment of k8s/base (migrations aside: they run once and exit)."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    in_compose = {
        (container["build"]["args"]["SERVICE"], container["command"][0])
        for container in compose["services"].values()
        if "build" in container and container["command"] != ["migrate"]
    }
    in_k8s = set()
    for manifest in sorted((ROOT / "k8s" / "base" / "apps").glob("*/deployment-*.yaml")):
        for doc in yaml.safe_load_all(manifest.read_text()):
            if doc and doc.get("kind") == "Deployment":
                for container in doc["spec"]["template"]["spec"]["containers"]:
                    program, role = container["command"]
                    in_k8s.add((program, role))
    return in_compose, in_k8s


# -- the tenant and its payers (the load is tests/e2e/load.py) ----------------------------------------


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving(RECEIVER_DELAY) as state:
        yield state


# -- stopping and replacing one process ---------------------------------------------------------------


@dataclass
class Restart:
    role: str
    began: float  # time.monotonic() of the SIGTERM
    exit_code: int | None = None
    seconds: float = 0.0  # from SIGTERM to exit
    saw_draining: bool = False  # its /readyz answered 503 "draining" before it exited
    ready_at: float = 0.0  # the replacement's readiness


async def _watch_readiness(http: aiohttp.ClientSession, url: str, restart: Restart, done: asyncio.Event) -> None:
    while not done.is_set():
        try:
            async with http.get(url) as r:
                if r.status == 503 and (await r.json()).get("status") == "draining":
                    restart.saw_draining = True
                    return
        except (aiohttp.ClientError, TimeoutError, ValueError):
            pass
        await asyncio.sleep(0.1)


async def _restart(http: aiohttp.ClientSession, platform: Platform, role: str) -> Restart:
    restart = Restart(role, time.monotonic())
    exited = asyncio.Event()
    watcher = asyncio.create_task(_watch_readiness(http, platform.ready_urls[role], restart, exited))
    # Blocking waits in a thread: the load and the receiver go on meanwhile.
    restart.exit_code, restart.seconds = await asyncio.to_thread(platform.terminate, role, GRACE + 15)
    exited.set()
    await watcher
    await asyncio.to_thread(platform.restart, role)
    restart.ready_at = time.monotonic()
    return restart


# -- the case -----------------------------------------------------------------------------------------


@pytest.fixture
def vhost() -> Iterator[tuple[str, str]]:
    with own_vhost("shutdown") as name_and_url:
        yield name_and_url


@pytest.fixture
def distributed(tmp_path: Path, vhost: tuple[str, str], distributed_starter: Any) -> Iterator[Platform]:
    with distributed_starter(tmp_path, vhost[1], own_databases("shutdown"), OVERRIDES, split_roles=True) as p:
        yield p


async def _projected(platform: Platform, expected: dict[str, str], within: float) -> dict[str, str]:
    """Each of ``expected``'s payments as reconciliation-svc's projection holds it (its status), once
    every one is there in its final status or after ``within`` seconds: the reconciliation worker
    consumed every money event, across its own restart and its publishers'."""
    conn = await asyncpg.connect(PG_DSN.rsplit("/", 1)[0] + "/" + platform.databases["reconciliation"])
    try:
        deadline = time.monotonic() + within
        while True:
            rows = await conn.fetch("SELECT id, status FROM recon_payments WHERE id = ANY($1::text[])", list(expected))
            projected = {row["id"]: row["status"] for row in rows}
            if projected == expected or time.monotonic() > deadline:
                return projected
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


def _payment_id(event: dict[str, Any]) -> str | None:
    payment = event.get("data", {}).get("payment")
    return payment.get("id") if isinstance(payment, dict) else None


async def test_sigterm_to_every_role_under_load_loses_nothing_and_does_nothing_twice(
    distributed: Platform, vhost: tuple[str, str], receiver: Receiver
) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        try:
            await _case(distributed, vhost[0], receiver, http)
        except AssertionError:
            print_logs(distributed)
            raise


async def _case(platform: Platform, vhost: str, receiver: Receiver, http: aiohttp.ClientSession) -> None:
    # Every role compose and k8s deploy runs here as a process of its own, and each is stopped.
    in_compose, in_k8s = deployed_commands()
    running = {(Path(argv[0]).name, argv[1]) for argv, _, _ in platform.specs.values()}
    assert running == in_compose == in_k8s, (running, in_compose, in_k8s)
    assert sorted(ROLES) == sorted(name for name, _ in platform.processes)

    traffic = Traffic(http, platform, label="shutdown", think=THINK, retry_pause=RETRY_PAUSE)
    await traffic.sign_up("Shutdown shop", receiver, ENDPOINTS)
    rng = random.Random(14)
    flows: list[asyncio.Task[None]] = []
    restarting = asyncio.Event()

    async def load() -> None:
        # A steady rate until the last replacement is up, whatever the platform answers meanwhile.
        started = time.monotonic()
        while not restarting.is_set():
            index = len(flows)
            flows.append(asyncio.create_task(traffic.flow(index, rng)))
            await asyncio.sleep(max(0.0, started + (index + 1) / RATE - time.monotonic()))

    back_office_reads = 0

    async def back_office() -> None:
        # The platform admin reads reconciliation's discrepancies: requests in flight at its api.
        nonlocal back_office_reads
        admin = {"Authorization": f"Bearer {platform.admin_token}"}
        url = f"{platform.gateway_url}/admin/reconciliation/discrepancies"
        while not restarting.is_set():
            try:
                await traffic.call("GET", url, 200, headers=admin)
            except FlowFailed as exc:
                traffic.failures.append(f"back office: {exc}")
                return
            back_office_reads += 1
            await asyncio.sleep(BACK_OFFICE_PAUSE)

    producer = asyncio.create_task(load())
    reader = asyncio.create_task(back_office())
    restarts: list[Restart] = []
    try:
        for role in ROLES:
            await asyncio.sleep(STEADY)
            restarts.append(await _restart(http, platform, role))
        await asyncio.sleep(STEADY)
    finally:
        restarting.set()
        await producer
        await reader
    await asyncio.gather(*flows)

    status, log, wanted = await traffic.settle(receiver, ENDPOINTS, SETTLE_DEADLINE)
    await asyncio.sleep(2.0)  # a duplicate would come now, if at all
    projected = await _projected(platform, traffic.expected, within=30)

    # Queues drained (a handed-back copy or an ack in flight may need a moment), and no dead letters.
    queues = await drained_queues(vhost, within=30)
    left = undelivered(queues)
    dead = {q: n for q, n in queues.items() if q.endswith(".dlq") and n}

    counts = Counter((h.endpoint, h.webhook_id) for h in receiver.hits)
    per_payment = Counter((_payment_id(ev), ev["type"]) for ev in log if _payment_id(ev) is not None)
    stuck = {pid: (status.get(pid), final) for pid, final in traffic.expected.items() if status.get(pid) != final}
    outside = [
        (status_code, request)
        for at, status_code, request in traffic.server_errors
        if status_code != 503 or not any(r.began <= at <= r.ready_at + WINDOW_SLACK for r in restarts)
    ]
    print(
        f"\npayments {len(traffic.expected)} (final {len(traffic.expected) - len(stuck)}), requests"
        f" {sum(traffic.statuses.values())}, 503s {traffic.statuses[503]}, refused {traffic.connection_errors};"
        f" webhooks {len(receiver.hits)} for {len(wanted)} wanted; back-office reads {back_office_reads};"
        + "".join(
            f"\n  {r.role}: exit {r.exit_code} in {r.seconds:.1f}s, draining seen {r.saw_draining},"
            f" replacement ready {r.ready_at - r.began:.1f}s after SIGTERM"
            for r in restarts
        )
    )

    assert [r.role for r in restarts] == ROLES
    for r in restarts:
        assert r.exit_code == 0, f"{r.role} exited {r.exit_code} after SIGTERM"
        assert r.seconds < GRACE, f"{r.role} took {r.seconds:.1f}s, over its {GRACE}s grace period"
        assert r.saw_draining, f"{r.role}'s /readyz never said draining before it exited"
    assert not traffic.failures, traffic.failures[:5]
    assert len(traffic.expected) >= RATE * STEADY * len(ROLES) / 2, "too little load to test anything"
    assert back_office_reads >= STEADY * len(ROLES) / BACK_OFFICE_PAUSE / 4, "too few back-office reads"
    assert not stuck, list(stuck.items())[:5]
    unprojected = {
        pid: (projected.get(pid), final) for pid, final in traffic.expected.items() if projected.get(pid) != final
    }
    assert not unprojected, f"reconciliation's projection differs: {list(unprojected.items())[:5]}"
    assert traffic.statuses[500] == 0
    assert not outside, outside[:5]
    assert all(h.verified for h in receiver.hits), "a webhook whose signature did not verify"
    missing = wanted - set(counts)
    assert not missing, f"{len(missing)} webhooks never delivered: {sorted(missing)[:5]}"
    duplicated = {k: n for k, n in counts.items() if n > 1}
    assert not duplicated, f"webhooks delivered more than once: {list(duplicated.items())[:5]}"
    assert not set(counts) - wanted, "webhooks of events not in the tenant's log"
    twice = {k: n for k, n in per_payment.items() if n > 1}
    assert not twice, f"events applied twice: {list(twice.items())[:5]}"
    for pid, final in traffic.expected.items():
        assert per_payment[(pid, "payment.created")] == 1
        assert per_payment[(pid, FINAL_TYPES[final])] == 1
    assert not dead, f"dead letters: {dead}"
    assert not left, f"messages left in queues: {left}"
