"""Fixtures of the providers-svc tests: a real PostgreSQL database (migrated with Alembic, truncated per
test), the app built by ``create_app`` with an in-memory bus, and helpers shared as fixtures."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from billing_runtime.bus import MemoryBus
from billing_runtime.db import create_engine
from billing_runtime.internal_auth import INTERNAL_HEADER, sign_internal
from billing_runtime.testing import create_test_database, drop_test_database, truncate_all
from providers_svc.adapters.sandbox import SIGNATURE_HEADER, sign
from providers_svc.app import create_app
from providers_svc.db.models import (
    AnomalyRow,
    ProviderEventRow,
    ProviderTransactionRow,
    SandboxChargeRow,
    metadata,
    outbox,
)
from providers_svc.settings import Settings
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

SERVICE_ROOT = Path(__file__).resolve().parents[1]
INTERNAL_SECRET = "test-internal-secret-0123456789abcdef"
# reconciliation-svc's own key here (PROVIDERS_RECONCILIATION_INTERNAL_SECRET).
RECONCILIATION_SECRET = "test-reconciliation-secret-0123456789abcdef"
SANDBOX_SECRET = "test-sandbox-secret-0123456789abcdef"
# A Fernet key of the tests' own (url-safe base64 of 32 bytes); rotation tests add another in front.
CREDENTIALS_KEYS = "dGVzdC1jcmVkZW50aWFscy1rZXktMDEyMzQ1Njc4OWE="
TENANT_A = "ten_aaaaaaaaaaaaaaaa"
TENANT_B = "ten_bbbbbbbbbbbbbbbb"

ClientFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    url = await create_test_database("providers", SERVICE_ROOT)
    yield url
    await drop_test_database(url)


@pytest.fixture(scope="session")
async def shared_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def engine(shared_engine: AsyncEngine) -> AsyncEngine:
    await truncate_all(shared_engine, metadata)
    return shared_engine


@pytest.fixture
def settings(database_url: str) -> Settings:
    # Every value given explicitly: no PROVIDERS_* variable of the machine leaks into the tests.
    return Settings(
        database_url=database_url,
        bus_url="memory://",
        internal_secret=INTERNAL_SECRET,
        reconciliation_internal_secret=RECONCILIATION_SECRET,
        sandbox_secret=SANDBOX_SECRET,
        credentials_keys=CREDENTIALS_KEYS,
        # Nothing listens on port 9 (discard); tests that need callbacks delivered point this elsewhere.
        public_gateway_url="http://127.0.0.1:9",
        enabled_providers=["sandbox"],
        # Accounts read on every callback, so a test that changes one in the database sees it at once;
        # the replica's copies are tested on their own (tests/integration/test_account_copies.py).
        account_cache_seconds=0,
        sandbox_currencies=["USD", "EUR", "UZS", "JPY"],
        outbox_poll_interval=0.05,
        sandbox_pending_delay=0.3,
        sandbox_callback_retry_schedule=[0.05],
        sandbox_callback_max_attempts=5,
        sandbox_callback_timeout=2.0,
        sandbox_callback_poll_interval=0.05,
    )


@pytest.fixture
async def bus() -> AsyncIterator[MemoryBus]:
    memory_bus = MemoryBus()
    await memory_bus.start()
    yield memory_bus
    await memory_bus.close()


@pytest.fixture
def make_client(aiohttp_client: Any, engine: AsyncEngine, bus: MemoryBus, settings: Settings) -> ClientFactory:
    """``await make_client(roles=("api",), account_providers=(), **setting_overrides)``: the app on a
    loopback test server.

    The api role alone is the default so outbox rows stay put for the assertions; the relay and the
    bank's sender run only when ``"worker"`` is asked for.
    """

    async def make(
        roles: tuple[str, ...] = ("api",),
        account_providers: tuple[Any, ...] | list[Any] = (),
        stripe_followers: tuple[Any, ...] | list[Any] = (),
        **overrides: Any,
    ) -> TestClient[web.Request, web.Application]:
        app_settings = settings.model_copy(update=overrides)
        app = create_app(
            app_settings,
            engine=engine,
            bus=bus,
            roles=roles,
            account_providers=account_providers,
            stripe_followers=stripe_followers,
        )
        client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
        return client

    return make


@pytest.fixture
def internal_headers() -> Callable[..., dict[str, str]]:
    def headers(
        tenant_id: str | None = TENANT_A,
        *,
        secret: str | None = None,
        audience: str = "providers",
        issuer: str = "payments",
        livemode: bool = False,
    ) -> dict[str, str]:
        # Each issuer signs with the key it holds: reconciliation-svc with its own.
        if secret is None:
            secret = RECONCILIATION_SECRET if issuer == "reconciliation" else INTERNAL_SECRET
        token = sign_internal(
            secret, issuer=issuer, audience=audience, tenant_id=tenant_id, tenant_name="Shop", livemode=livemode
        )
        return {INTERNAL_HEADER: token}

    return headers


@pytest.fixture
def payment_request() -> Callable[..., dict[str, Any]]:
    counter = iter(range(1_000_000))

    def build(**fields: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "payment_id": f"pay_test{next(counter):06d}{time.time_ns() % 1_000_000:06d}",
            "provider": "sandbox",
            "amount": 5000,
            "currency": "USD",
            "order_id": "order-1",
            "description": "Two coffees",
            "return_url": "http://127.0.0.1:8080/c/tok_1/return",
            "expires_at": (datetime.now(UTC) + timedelta(minutes=30)).isoformat(),
        }
        body.update(fields)
        return body

    return build


@pytest.fixture
def start_payment(
    internal_headers: Callable[..., dict[str, str]], payment_request: Callable[..., dict[str, Any]]
) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Start a sandbox payment through the internal API and return the 200 body (plus ``payment_id``)."""

    async def start(
        client: TestClient[web.Request, web.Application], tenant_id: str = TENANT_A, **fields: Any
    ) -> dict[str, Any]:
        body = payment_request(**fields)
        response = await client.post("/internal/payments/start", json=body, headers=internal_headers(tenant_id))
        assert response.status == 200, await response.text()
        data: dict[str, Any] = await response.json()
        data["payment_id"] = body["payment_id"]
        return data

    return start


@dataclass(frozen=True)
class SignedCallback:
    body: bytes
    headers: dict[str, str]
    event_id: str


@pytest.fixture
def sandbox_callback() -> Callable[..., SignedCallback]:
    """A callback as the sandbox bank sends it, signed with the test secret (overridable)."""

    def build(
        transaction: str,
        *,
        type_: str = "payment.succeeded",
        amount: int = 5000,
        currency: str = "USD",
        event_id: str | None = None,
        failure_code: str | None = None,
        secret: str = SANDBOX_SECRET,
        timestamp: int | None = None,
    ) -> SignedCallback:
        event_id = event_id or f"sbevt_{time.time_ns()}"
        payload: dict[str, Any] = {
            "id": event_id,
            "type": type_,
            "transaction": transaction,
            "amount": amount,
            "currency": currency,
            "created": int(time.time()),
        }
        if failure_code is not None:
            payload["failure_code"] = failure_code
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, body, timestamp)}
        return SignedCallback(body, headers, event_id)

    return build


@pytest.fixture
def db_read(engine: AsyncEngine) -> Callable[..., Awaitable[list[Any]]]:
    """``await db_read("outbox"|"transactions"|"events"|"charges"|"anomalies")``: the rows as stored."""
    tables: dict[str, Any] = {
        "outbox": outbox,
        "transactions": ProviderTransactionRow.__table__,
        "events": ProviderEventRow.__table__,
        "charges": SandboxChargeRow.__table__,
        "anomalies": AnomalyRow.__table__,
    }

    async def read(name: str) -> list[Any]:
        table = tables[name]
        async with engine.connect() as conn:
            return list((await conn.execute(select(table))).mappings().all())

    return read


@pytest.fixture
def eventually() -> Callable[..., Awaitable[None]]:
    """Poll an async predicate until it holds (background tasks are involved), failing after ``within`` s."""

    async def wait(predicate: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
        try:
            async with asyncio.timeout(within):
                while True:
                    if await predicate():
                        return
                    await asyncio.sleep(0.02)
        except TimeoutError:
            raise AssertionError(f"condition not met within {within}s") from None

    return wait
