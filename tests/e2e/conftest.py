"""Start the platform as real processes and drive it through the gateway only.

``embedded``: one ``billing-embedded`` process (the PostgreSQL server it starts itself, in-process bus).
``distributed``: one process per service role on PostgreSQL (a database per service) and RabbitMQ.
Every port is picked free on 127.0.0.1; nothing listens or connects elsewhere.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from billing_runtime.testing import PG_DSN, free_port, require_port, require_rabbitmq, serving

BIN = Path(sys.executable).parent
RELAXED_TOKEN_THROTTLES = {
    "GATEWAY_HASH_RATE": "100",
    "GATEWAY_HASH_BURST": "100",
    "GATEWAY_TOKEN_RATE_PER_CLIENT": "100",
    "GATEWAY_TOKEN_BURST_PER_CLIENT": "100",
}
# Every dashboard test signs in from 127.0.0.1 on one shared platform: its sign-in throttle is the
# business of tests/e2e/test_dashboard_auth.py (checkout-web apps with limits of their own).
RELAXED_SIGN_IN_THROTTLES = {
    "CHECKOUT_LOGIN_LIMIT_PER_CLIENT": "10000",
    "CHECKOUT_LOGIN_LIMIT_PER_APP": "10000",
}
# A key per service that receives internal calls, each held only by its allowed callers.
INTERNAL_KEYS = {
    "payments": "e2e-payments-internal-key-0123456789abcdef",
    "providers": "e2e-providers-internal-key-0123456789abcdef",
    "webhooks": "e2e-webhooks-internal-key-0123456789abcdef",
    "reconciliation": "e2e-reconciliation-internal-key-0123456789abcdef",
    # reconciliation-svc's own keys at payments-svc and providers-svc (a key per issuer there).
    "payments_reconciliation": "e2e-payments-reconciliation-key-0123456789abcdef",
    "providers_reconciliation": "e2e-providers-reconciliation-key-0123456789abcdef",
}


@dataclass
class Platform:
    mode: str
    gateway_url: str
    checkout_url: str
    admin_token: str
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    # Distributed mode: each service's database name and each process's port.
    databases: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    log_files: list[object] = field(default_factory=list)
    # How each process was started (argv, environment, log directory), so one can be started again
    # (``restart``), and the URL that answers 200 once it is ready (distributed mode).
    specs: dict[str, tuple[list[str], dict[str, str], Path]] = field(default_factory=dict)
    ready_urls: dict[str, str] = field(default_factory=dict)

    def process(self, name: str) -> subprocess.Popen[bytes]:
        return next(proc for n, proc in self.processes if n == name)

    def terminate(self, name: str, timeout: float) -> tuple[int | None, float]:
        """SIGTERM to one process; its exit status (None: still running after ``timeout``, then
        killed) and how long it took."""
        proc = self.process(name)
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            code: int | None = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            code = None
        return code, time.monotonic() - began

    def restart(self, name: str) -> None:
        """Start a stopped process again as it was started (same argv, environment and ports), in its
        place in ``processes``, logging to a new file; returns once it is ready."""
        argv, env, log_dir = self.specs[name]
        index = next(i for i, (n, _) in enumerate(self.processes) if n == name)
        assert self.processes[index][1].poll() is not None, f"{name} is still running"
        generation = sum(1 for log in self.logs if log.name.startswith(f"{name}.")) + 1
        log = log_dir / f"{name}.{generation}.log"
        self.logs.append(log)
        out = log.open("wb")
        self.log_files.append(out)
        proc = subprocess.Popen(argv, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
        self.processes[index] = (name, proc)
        if name in self.ready_urls:
            _wait_ready(self, [self.ready_urls[name]])

    # Distributed mode: the key each service verifies internal tokens with (a test that plays another
    # service, reconciliation-svc say, signs with it).
    internal_keys: dict[str, str] = field(default_factory=dict)

    def stop(self) -> dict[str, int | None]:
        codes: dict[str, int | None] = {}
        for _name, proc in self.processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for name, proc in self.processes:
            try:
                codes[name] = proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[name] = None
        for f in self.log_files:
            f.close()  # type: ignore[attr-defined]
        return codes


def _spawn(platform: Platform, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
    log = log_dir / f"{name}.log"
    platform.logs.append(log)
    out = log.open("wb")
    platform.log_files.append(out)
    proc = subprocess.Popen(argv, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
    platform.processes.append((name, proc))
    platform.specs[name] = (argv, env, log_dir)


def _wait_ready(platform: Platform, urls: list[str], timeout: float = 60) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    pending = list(urls)
    while pending:
        for name, proc in platform.processes:
            if proc.poll() is not None:
                logs = "\n".join(p.read_text()[-3000:] for p in platform.logs)
                raise RuntimeError(f"{name} exited with {proc.returncode} while starting:\n{logs}")
        url = pending[0]
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    pending.pop(0)
                    continue
        except OSError:
            pass
        if time.monotonic() > deadline:
            logs = "\n".join(p.read_text()[-3000:] for p in platform.logs)
            raise RuntimeError(f"{url} not ready after {timeout}s:\n{logs}")
        time.sleep(0.2)


def start_embedded(
    data: Path, ports: dict[str, int], admin: str | None = None, extra_env: dict[str, str] | None = None
) -> Platform:
    """One ``billing-embedded`` process on ``ports`` with its data in ``data``; returns once ready."""
    env = {f"{k}_PORT": str(v) for k, v in ports.items()}
    env.update(BILLING_DATA_DIR=str(data), PROVIDERS_SANDBOX_PENDING_DELAY="1", PAYMENTS_OUTBOX_POLL_INTERVAL="0.2")
    env.update(RELAXED_TOKEN_THROTTLES)
    env.update(RELAXED_SIGN_IN_THROTTLES)
    # No demo shop unless a test asks for it (BILLING_DEMO_PORT with it): its fixed default port would
    # collide between platforms started side by side.
    env["BILLING_DEMO"] = "false"
    # As `make run` starts it: the tests' webhook receivers are on loopback.
    env["WEBHOOKS_ALLOW_LOOPBACK"] = "true"
    env.update(extra_env or {})
    if admin is not None:
        env["BILLING_ADMIN_TOKEN"] = admin
    platform = Platform(
        "embedded",
        f"http://127.0.0.1:{ports['GATEWAY']}",
        f"http://127.0.0.1:{ports['CHECKOUT']}",
        admin or "",
        ports={k.lower(): v for k, v in ports.items()},
    )
    _spawn(platform, "embedded", [str(BIN / "billing-embedded")], env, data)
    try:
        # The gateway's /readyz is not public (API.md "Operations"); the services' readiness covers its upstreams.
        _wait_ready(
            platform,
            [f"http://127.0.0.1:{p}/{'healthz' if name == 'GATEWAY' else 'readyz'}" for name, p in ports.items()],
        )
    except BaseException:
        platform.stop()
        raise
    return platform


def embedded_ports() -> dict[str, int]:
    return {k: free_port() for k in ("GATEWAY", "CHECKOUT", "PAYMENTS", "PROVIDERS", "WEBHOOKS", "RECONCILIATION")}


@pytest.fixture(scope="session")
def embedded_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    platform = start_embedded(tmp_path_factory.mktemp("embedded"), embedded_ports(), secrets.token_urlsafe(24))
    yield platform
    platform.stop()


@pytest.fixture(scope="session")
def embedded_demo_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """The embedded platform with its demo shop on a free port (``ports["demo"]``), once the shop's
    tenant is set up (the banner is printed after that). Its data directory holds the log."""
    demo = free_port()
    platform = start_embedded(
        tmp_path_factory.mktemp("embedded-demo"),
        embedded_ports(),
        secrets.token_urlsafe(24),
        {"BILLING_DEMO": "true", "BILLING_DEMO_PORT": str(demo)},
    )
    platform.ports["demo"] = demo
    try:
        deadline = time.monotonic() + 60
        while "Demo shop" not in platform.logs[-1].read_text(errors="replace"):
            if time.monotonic() > deadline:
                raise RuntimeError(platform.logs[-1].read_text(errors="replace")[-3000:])
            time.sleep(0.2)
        yield platform
    finally:
        platform.stop()


@pytest.fixture
def embedded_starter():  # type: ignore[no-untyped-def]
    """For tests that stop and restart the embedded platform themselves."""
    return start_embedded, embedded_ports


async def _create_databases(names: list[str]) -> None:
    conn = await asyncpg.connect(PG_DSN)
    try:
        for name in names:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_databases(names: list[str]) -> None:
    conn = await asyncpg.connect(PG_DSN)
    try:
        for name in names:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@contextlib.contextmanager
def run_distributed(
    logs: Path,
    rabbit: str,
    suffix: str,
    overrides: dict[str, dict[str, str]] | None = None,
    *,
    split_roles: bool = False,
) -> Iterator[Platform]:
    """The distributed platform on databases named ``<service>_<suffix>`` (created, and dropped at the
    end) and the RabbitMQ vhost ``rabbit``; ``overrides`` adds settings per service (``"payments"``...).

    providers-svc and reconciliation-svc run each in one process of both roles (``all``, named
    ``providers`` and ``reconciliation``) unless ``split_roles``: then each role is a process of its own
    (``providers-api``, ``providers-worker``, ``reconciliation-api``, ``reconciliation-worker``), as
    docker-compose.yml and k8s/ deploy them, so every process role of the platform runs separately."""
    require_port("127.0.0.1", 5432, "PostgreSQL")
    dbs = {
        svc: f"{svc}_{suffix}" for svc in ("gateway", "payments", "providers", "webhooks", "reconciliation", "checkout")
    }
    asyncio.run(_create_databases(list(dbs.values())))
    base = PG_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    roles = ("gateway", "checkout", "payments", "payments_worker", "providers", "providers_worker")
    p = {
        k: free_port()
        for k in (*roles, "gateway_ops", "webhooks", "webhooks_worker", "reconciliation", "reconciliation_worker")
    }
    admin = secrets.token_urlsafe(24)
    gateway_url = f"http://127.0.0.1:{p['gateway']}"
    common = {"BILLING_LOG_LEVEL": "INFO"}
    env = {
        "gateway": {
            "GATEWAY_PORT": str(p["gateway"]),
            # Its /readyz and /metrics on a loopback listener of their own (not the public one).
            "GATEWAY_OPS_PORT": str(p["gateway_ops"]),
            # Every test's tenants ask for tokens from 127.0.0.1: the token throttles are the gateway
            # tests' business (gateway/tests/test_token_throttle.py), not a source of flakes here.
            **RELAXED_TOKEN_THROTTLES,
            "GATEWAY_DATABASE_URL": f"{base}/{dbs['gateway']}",
            "GATEWAY_PAYMENTS_INTERNAL_SECRET": INTERNAL_KEYS["payments"],
            "GATEWAY_WEBHOOKS_INTERNAL_SECRET": INTERNAL_KEYS["webhooks"],
            "GATEWAY_PROVIDERS_INTERNAL_SECRET": INTERNAL_KEYS["providers"],
            "GATEWAY_ADMIN_TOKEN": admin,
            "GATEWAY_JWT_KEYS": "e2e:" + "k" * 40,
            "GATEWAY_PAYMENTS_URL": f"http://127.0.0.1:{p['payments']}",
            "GATEWAY_PROVIDERS_URL": f"http://127.0.0.1:{p['providers']}",
            "GATEWAY_WEBHOOKS_URL": f"http://127.0.0.1:{p['webhooks']}",
            "GATEWAY_RECONCILIATION_INTERNAL_SECRET": INTERNAL_KEYS["reconciliation"],
            "GATEWAY_RECONCILIATION_URL": f"http://127.0.0.1:{p['reconciliation']}",
        },
        "payments": {
            "PAYMENTS_DATABASE_URL": f"{base}/{dbs['payments']}",
            "PAYMENTS_BUS_URL": rabbit,
            "PAYMENTS_INTERNAL_SECRET": INTERNAL_KEYS["payments"],
            "PAYMENTS_PROVIDERS_INTERNAL_SECRET": INTERNAL_KEYS["providers"],
            "PAYMENTS_RECONCILIATION_INTERNAL_SECRET": INTERNAL_KEYS["payments_reconciliation"],
            "PAYMENTS_PROVIDERS_URL": f"http://127.0.0.1:{p['providers']}",
            "PAYMENTS_CHECKOUT_BASE_URL": f"http://127.0.0.1:{p['checkout']}",
            "PAYMENTS_OUTBOX_POLL_INTERVAL": "0.5",
        },
        "providers": {
            "PROVIDERS_DATABASE_URL": f"{base}/{dbs['providers']}",
            "PROVIDERS_BUS_URL": rabbit,
            "PROVIDERS_INTERNAL_SECRET": INTERNAL_KEYS["providers"],
            "PROVIDERS_RECONCILIATION_INTERNAL_SECRET": INTERNAL_KEYS["providers_reconciliation"],
            "PROVIDERS_PUBLIC_GATEWAY_URL": gateway_url,
            "PROVIDERS_SANDBOX_SECRET": "e2e-sandbox-secret-0123456789abcdef",
            "PROVIDERS_CREDENTIALS_KEYS": base64.urlsafe_b64encode(b"e2e-credentials-key-0123456789ab").decode(),
            "PROVIDERS_SANDBOX_PENDING_DELAY": "1",
        },
        "checkout": {
            "CHECKOUT_PORT": str(p["checkout"]),
            "CHECKOUT_GATEWAY_URL": gateway_url,
            "CHECKOUT_DATABASE_URL": f"{base}/{dbs['checkout']}",
            "CHECKOUT_SESSION_KEYS": base64.urlsafe_b64encode(b"e2e-session-key-0123456789abcdef").decode(),
            **RELAXED_SIGN_IN_THROTTLES,
        },
        "webhooks": {
            "WEBHOOKS_DATABASE_URL": f"{base}/{dbs['webhooks']}",
            "WEBHOOKS_BUS_URL": rabbit,
            "WEBHOOKS_INTERNAL_SECRET": INTERNAL_KEYS["webhooks"],
            "WEBHOOKS_ENCRYPTION_KEY": base64.urlsafe_b64encode(b"e2e-fernet-key-0123456789abcdef!").decode(),
            # The guard stays on; the tenant's test receiver on loopback is the one allowed host.
            "WEBHOOKS_SSRF_GUARD": "true",
            "WEBHOOKS_ALLOWED_HOSTS": "127.0.0.1",
            # Every listener of this platform: refused whatever the allow-list says.
            "WEBHOOKS_PLATFORM_ADDRESSES": ",".join(f"127.0.0.1:{port}" for port in p.values()),
            "WEBHOOKS_ALLOW_HTTP": "true",
            "WEBHOOKS_RETRY_SCHEDULE": "0,1,2,4",
        },
        "reconciliation": {
            "RECONCILIATION_DATABASE_URL": f"{base}/{dbs['reconciliation']}",
            "RECONCILIATION_BUS_URL": rabbit,
            "RECONCILIATION_PORT": str(p["reconciliation"]),
            "RECONCILIATION_INTERNAL_SECRET": INTERNAL_KEYS["reconciliation"],
            "RECONCILIATION_PROVIDERS_INTERNAL_SECRET": INTERNAL_KEYS["providers_reconciliation"],
            "RECONCILIATION_PROVIDERS_URL": f"http://127.0.0.1:{p['providers']}",
            "RECONCILIATION_PAYMENTS_INTERNAL_SECRET": INTERNAL_KEYS["payments_reconciliation"],
            "RECONCILIATION_PAYMENTS_URL": f"http://127.0.0.1:{p['payments']}",
        },
    }
    for svc, extra in (overrides or {}).items():
        env[svc].update(extra)
    platform = Platform(
        "distributed",
        gateway_url,
        f"http://127.0.0.1:{p['checkout']}",
        admin,
        databases=dbs,
        ports=p,
        internal_keys=INTERNAL_KEYS,
    )
    try:
        # Each service migrates its own database: all at once.
        migrations = [
            subprocess.Popen([str(BIN / script), "migrate"], env={**os.environ, **env[svc]})
            for svc, script in (
                ("gateway", "gateway"),
                ("payments", "payments-svc"),
                ("providers", "providers-svc"),
                ("webhooks", "webhook-dispatcher"),
                ("reconciliation", "reconciliation-svc"),
                ("checkout", "checkout-web"),
            )
        ]
        for migration in migrations:
            if migration.wait() != 0:
                raise subprocess.CalledProcessError(migration.returncode, migration.args)
        _spawn(platform, "gateway", [str(BIN / "gateway"), "api"], {**common, **env["gateway"]}, logs)
        # payments split into its two roles, as on Kubernetes: stateless API and the worker.
        _spawn(
            platform,
            "payments-api",
            [str(BIN / "payments-svc"), "api"],
            {**common, **env["payments"], "PAYMENTS_PORT": str(p["payments"])},
            logs,
        )
        _spawn(
            platform,
            "payments-worker",
            [str(BIN / "payments-svc"), "worker"],
            {**common, **env["payments"], "PAYMENTS_PORT": str(p["payments_worker"])},
            logs,
        )
        # providers-svc's worker serves its health routes on PROVIDERS_WORKER_PORT (8102 in compose and k8s).
        providers_env = {
            **common,
            **env["providers"],
            "PROVIDERS_PORT": str(p["providers"]),
            "PROVIDERS_WORKER_PORT": str(p["providers_worker"]),
        }
        if split_roles:
            _spawn(platform, "providers-api", [str(BIN / "providers-svc"), "api"], providers_env, logs)
            _spawn(platform, "providers-worker", [str(BIN / "providers-svc"), "worker"], providers_env, logs)
        else:
            _spawn(platform, "providers", [str(BIN / "providers-svc"), "all"], providers_env, logs)
        _spawn(platform, "checkout", [str(BIN / "checkout-web"), "serve"], {**common, **env["checkout"]}, logs)
        # The dispatcher too: its API (endpoints, deliveries) and its worker (consumer and sender).
        _spawn(
            platform,
            "webhooks-api",
            [str(BIN / "webhook-dispatcher"), "api"],
            {**common, **env["webhooks"], "WEBHOOKS_PORT": str(p["webhooks"])},
            logs,
        )
        _spawn(
            platform,
            "webhooks-worker",
            [str(BIN / "webhook-dispatcher"), "worker"],
            {**common, **env["webhooks"], "WEBHOOKS_PORT": str(p["webhooks_worker"])},
            logs,
        )
        # Reconciliation: its API (the admin routes) and its worker (the consumer of every money event, the
        # janitor, the runs), in one process unless split.
        if split_roles:
            _spawn(
                platform,
                "reconciliation-api",
                [str(BIN / "reconciliation-svc"), "api"],
                {**common, **env["reconciliation"]},
                logs,
            )
            _spawn(
                platform,
                "reconciliation-worker",
                [str(BIN / "reconciliation-svc"), "worker"],
                {**common, **env["reconciliation"], "RECONCILIATION_PORT": str(p["reconciliation_worker"])},
                logs,
            )
        else:
            _spawn(
                platform,
                "reconciliation",
                [str(BIN / "reconciliation-svc"), "all"],
                {**common, **env["reconciliation"]},
                logs,
            )
        split = (
            (
                ("providers-api", "providers"),
                ("providers-worker", "providers_worker"),
                ("reconciliation-api", "reconciliation"),
                ("reconciliation-worker", "reconciliation_worker"),
            )
            if split_roles
            else (("providers", "providers"), ("reconciliation", "reconciliation"))
        )
        # The gateway's /readyz is on its ops listener (its public one wants the admin token).
        platform.ready_urls = {
            name: f"http://127.0.0.1:{p[key]}/readyz"
            for name, key in (
                *split,
                ("payments-api", "payments"),
                ("payments-worker", "payments_worker"),
                ("checkout", "checkout"),
                ("webhooks-api", "webhooks"),
                ("webhooks-worker", "webhooks_worker"),
                ("gateway", "gateway_ops"),
            )
        }
        assert set(platform.ready_urls) == {name for name, _ in platform.processes}
        _wait_ready(platform, list(platform.ready_urls.values()))
        yield platform
    finally:
        platform.stop()
        asyncio.run(_drop_databases(list(dbs.values())))


@pytest.fixture(scope="session")
def distributed_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with run_distributed(tmp_path_factory.mktemp("distributed"), require_rabbitmq(), f"e2e_{os.getpid()}") as platform:
        yield platform


@pytest.fixture
def distributed_starter():  # type: ignore[no-untyped-def]
    """For tests that run a distributed platform of their own (databases, vhost, settings)."""
    return run_distributed


@pytest.fixture(params=["embedded", "distributed"])
def platform(request: pytest.FixtureRequest) -> Platform:
    return request.getfixturevalue(f"{request.param}_platform")


# localstripe (a fake Stripe on loopback, PROTOCOLS.md §5a) for the Stripe tests (tests/e2e/stripe_support.py).
LOCALSTRIPE = Path(__file__).resolve().parents[2] / "providers-svc/tests/stripe_payments/localstripe_server.py"


@pytest.fixture(scope="session")
async def localstripe() -> AsyncIterator[str]:
    """One localstripe for the session, shared by every Stripe test of either mode: its base URL."""
    async with serving([sys.executable, str(LOCALSTRIPE)], "localstripe") as url:
        yield url


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


@dataclass
class Receiver:
    """A tenant's webhook endpoint on loopback: every request as received (headers, raw body)."""

    url: str
    got: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def __iter__(self):  # type: ignore[no-untyped-def]
        # ``url, got = receiver`` reads as the two things a test needs.
        return iter((self.url, self.got))

    def types(self) -> list[str]:
        return [json.loads(body)["type"] for _, body in self.got]

    async def wait(self, event_type: str, timeout: float = 30) -> dict:
        """The first webhook of ``event_type`` (its parsed body), waiting for it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for _, body in self.got:
                event = json.loads(body)
                if event["type"] == event_type:
                    return event
            await asyncio.sleep(0.1)
        raise AssertionError(f"no {event_type} webhook within {timeout}s: {self.types()}")


@pytest.fixture
async def receiver(aiohttp_server) -> Receiver:  # type: ignore[no-untyped-def]
    state = Receiver("")

    async def hook(request: web.Request) -> web.Response:
        state.got.append((dict(request.headers), await request.read()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = await aiohttp_server(app, host="127.0.0.1")
    state.url = f"http://127.0.0.1:{server.port}/hook"
    return state


@dataclass
class TenantClient:
    """A tenant backend as it would code against API.md: JWT, idempotency keys, polling."""

    http: aiohttp.ClientSession
    platform: Platform
    app_name: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def create_payment(self, key: str, **body: object) -> dict:
        payload = {"amount": 5000, "currency": "USD", "order_id": "order-1", **body}
        async with self.http.post(
            f"{self.platform.gateway_url}/v1/payments", json=payload, headers={**self.auth, "Idempotency-Key": key}
        ) as r:
            assert r.status == 201, await r.text()
            return await r.json()

    async def payment(self, payment_id: str) -> dict:
        async with self.http.get(f"{self.platform.gateway_url}/v1/payments/{payment_id}", headers=self.auth) as r:
            assert r.status == 200, await r.text()
            return await r.json()

    async def pay_at_sandbox(self, payment: dict, outcome: str = "succeed") -> None:
        """The payer picks the sandbox on the payment's hosted checkout and presses ``outcome`` on the
        bank's page (the outcome arrives by the bank's callback: wait for it with ``wait_for_status``)."""
        async with self.http.post(
            f"{self.platform.checkout_url}/c/{payment['checkout_token']}/pay",
            data={"provider": "sandbox"},
            allow_redirects=False,
        ) as r:
            assert r.status == 303, await r.text()
            page = r.headers["Location"]
        async with self.http.post(page, data={"outcome": outcome}, allow_redirects=False) as r:
            assert r.status == 303, await r.text()

    async def wait_for_status(
        self, payment_id: str, wanted: str, timeout: float = 30, *, after: Callable[[dict], object] | None = None
    ) -> dict:
        """The payment once in ``wanted`` (and, with ``after``, once that holds of it too: CREATED is
        also where a payment is before it was ever tried), or as it is at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            payment = await self.payment(payment_id)
            reached = payment["status"] == wanted and (after is None or after(payment))
            if reached or time.monotonic() > deadline:
                return payment
            await asyncio.sleep(0.1)

    async def events(self, **query: str) -> list[dict]:
        async with self.http.get(f"{self.platform.gateway_url}/v1/events", params=query, headers=self.auth) as r:
            assert r.status == 200, await r.text()
            return (await r.json())["data"]


@pytest.fixture
def new_tenant(platform: Platform, http: aiohttp.ClientSession):  # type: ignore[no-untyped-def]
    async def make() -> TenantClient:
        app_name = f"shop-{secrets.token_hex(4)}"
        async with http.post(
            f"{platform.gateway_url}/admin/tenants",
            json={"app_name": app_name, "display_name": f"Shop {app_name}"},
            headers={"Authorization": f"Bearer {platform.admin_token}"},
        ) as r:
            assert r.status == 201, await r.text()
            secret = (await r.json())["secret"]
        async with http.post(
            f"{platform.gateway_url}/v1/auth/token", json={"app_name": app_name, "secret": secret}
        ) as r:
            assert r.status == 200, await r.text()
            token = (await r.json())["access_token"]
        return TenantClient(http, platform, app_name, token)

    return make
