"""webhook-dispatcher fixtures: a real PostgreSQL database per run (migrated by Alembic), emptied
before each test; the app with an in-memory bus; loopback HTTP receivers that verify every request
with the reference Standard Webhooks library."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from billing_contracts.events import PaymentSucceededV1
from billing_runtime.bus import MemoryBus, Message
from billing_runtime.db import create_engine
from billing_runtime.internal_auth import INTERNAL_HEADER, sign_internal
from billing_runtime.testing import create_test_database, drop_test_database, truncate_all
from cryptography.fernet import Fernet
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from webhook_dispatcher.app import INTERNAL_AUDIENCE, create_app
from webhook_dispatcher.db.models import metadata
from webhook_dispatcher.settings import Settings

SERVICE_ROOT = Path(__file__).resolve().parents[1]
INTERNAL_SECRET = "test-internal-secret-0123456789abcdef"
ENCRYPTION_KEY = Fernet.generate_key().decode()
# Port 9 (discard) on loopback: nothing listens there on these machines, so connections are refused at
# once; and were something to listen, the traffic would still never leave the machine.
NOBODY_LISTENS = "http://127.0.0.1:9/hook"


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    url = await create_test_database("webhooks", SERVICE_ROOT)
    yield url
    await drop_test_database(url)


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def clean_db(engine: AsyncEngine) -> AsyncEngine:
    await truncate_all(engine, metadata)
    return engine


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "internal_secret": INTERNAL_SECRET,
        "encryption_key": ENCRYPTION_KEY,
        "allow_http": True,
        # Receivers listen on loopback; the guard itself is on, as in every mode.
        "allow_loopback": True,
        "retry_schedule": "0,0.1,0.2",
        "retry_jitter": 0,
        "request_timeout": 2,
        "lease_seconds": 5,
        "dispatch_poll_interval": 0.05,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings_factory(database_url: str) -> Callable[..., Settings]:
    return lambda **overrides: make_settings(overrides.pop("database_url", database_url), **overrides)


@pytest.fixture
def bus() -> MemoryBus:
    return MemoryBus()


@pytest.fixture
async def start_app(aiohttp_client, clean_db: AsyncEngine, bus: MemoryBus, settings_factory):  # type: ignore[no-untyped-def]
    """Start an app (api + worker unless told otherwise) on the test database; returns its client."""
    await bus.start()

    async def start(roles: tuple[str, ...] = ("api", "worker"), **overrides: Any):  # type: ignore[no-untyped-def]
        app = create_app(settings_factory(**overrides), engine=clean_db, bus=bus, roles=roles)
        return await aiohttp_client(app)

    yield start
    await bus.close()


@pytest.fixture
async def client(start_app):  # type: ignore[no-untyped-def]
    return await start_app()


@pytest.fixture
def auth() -> Callable[..., dict[str, str]]:
    def make(tenant: str = "ten_a", *, livemode: bool = False) -> dict[str, str]:
        token = sign_internal(
            INTERNAL_SECRET, issuer="gateway", audience=INTERNAL_AUDIENCE, tenant_id=tenant, livemode=livemode
        )
        return {INTERNAL_HEADER: token}

    return make


@dataclass
class Hit:
    headers: dict[str, str]
    body: bytes
    at: float
    verified: bool


@dataclass
class Receiver:
    """A tenant's webhook endpoint on loopback. ``responses`` is consumed one per request (then
    ``default``); each entry is a status or a (status, headers) pair."""

    url: str = ""
    secrets: list[str] = field(default_factory=list)
    responses: list[Any] = field(default_factory=list)
    default: Any = 200
    delay: float = 0.0
    body: str | None = None
    hits: list[Hit] = field(default_factory=list)
    concurrent: int = 0
    max_concurrent: int = 0

    def verify(self, headers: dict[str, str], body: bytes) -> bool:
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
            return True
        return False

    def ids(self) -> list[str]:
        return [h.headers["webhook-id"] for h in self.hits]


@pytest.fixture
def receiver(aiohttp_server):  # type: ignore[no-untyped-def]
    """Receivers for one test. At the end every request any of them got must have passed the reference
    verifier, so a signing regression fails every delivery test, not only the ones that look at
    signatures."""
    made: list[Receiver] = []

    async def make(path: str = "/hook", **kwargs: Any) -> Receiver:
        state = Receiver(**kwargs)
        made.append(state)

        async def handle(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            headers = {k.lower(): v for k, v in request.headers.items()}
            state.hits.append(Hit(headers, body, time.monotonic(), state.verify(headers, body)))
            state.concurrent += 1
            state.max_concurrent = max(state.max_concurrent, state.concurrent)
            try:
                if state.delay:
                    await asyncio.sleep(state.delay)
            finally:
                state.concurrent -= 1
            spec = state.responses.pop(0) if state.responses else state.default
            status, extra = (spec, {}) if isinstance(spec, int) else spec
            text = state.body if state.body is not None else f"answer {status}"
            return web.Response(status=status, text=text, headers=extra)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        server = await aiohttp_server(app)
        state.url = f"http://127.0.0.1:{server.port}{path}"
        return state

    yield make
    unverified = [(r.url, h.headers.get("webhook-id")) for r in made for h in r.hits if not h.verified]
    assert not unverified, f"requests the standardwebhooks verifier rejected: {unverified}"


@pytest.fixture
def endpoint_at(auth):  # type: ignore[no-untyped-def]
    """Create an endpoint on ``api`` (any app this test started) delivering to ``hook``, and hand its
    secret to the receiver so that every request it gets is verified."""

    async def create(api, hook: Receiver, *, url: str | None = None, tenant: str = "ten_a", **body: Any):  # type: ignore[no-untyped-def]
        response = await api.post("/v1/webhook-endpoints", json={"url": url or hook.url, **body}, headers=auth(tenant))
        assert response.status == 201, await response.text()
        created = await response.json()
        hook.secrets.append(created["secret"])
        return created

    return create


@pytest.fixture
def create_endpoint(client, auth):  # type: ignore[no-untyped-def]
    async def create(receiver: Receiver | None = None, *, tenant: str = "ten_a", **body: Any) -> dict[str, Any]:
        # Without a receiver: a loopback port nobody listens on. Tests send traffic only to loopback,
        # and this worker allows loopback, so that is all it can reach, but a public name would be called.
        payload = {"url": receiver.url if receiver else NOBODY_LISTENS, **body}
        response = await client.post("/v1/webhook-endpoints", json=payload, headers=auth(tenant))
        assert response.status == 201, await response.text()
        created = await response.json()
        if receiver is not None:
            receiver.secrets.append(created["secret"])
        return created

    return create


def payment_event(tenant: str = "ten_a", event_type: type = PaymentSucceededV1, **overrides: Any) -> Any:
    now = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    payment = {
        "id": "pay_1",
        "status": "SUCCEEDED",
        "amount": 5000,
        "currency": "USD",
        "order_id": "order-1",
        "created_at": now,
        "updated_at": now,
        "expires_at": now,
    }
    return event_type(tenant_id=tenant, data={"payment": payment}, **overrides)


def as_message(event: Any) -> Message:
    return Message(
        routing_key=f"{event.source}.{event.event_type}.v1",
        body=event.model_dump_json().encode(),
        message_id=event.event_id,
    )


@pytest.fixture
def publish(bus: MemoryBus) -> Callable[..., Awaitable[Any]]:
    async def send(tenant: str = "ten_a", **overrides: Any) -> Any:
        event = payment_event(tenant, **overrides)
        await bus.publish(as_message(event))
        return event

    return send


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@pytest.fixture
def wait_status(client, auth):  # type: ignore[no-untyped-def]
    """Poll a delivery until it reaches ``status``; return its detail."""

    async def wait(delivery_id: str, status: str, *, tenant: str = "ten_a", timeout: float = 10.0) -> dict[str, Any]:
        detail: dict[str, Any] = {}

        async def done() -> bool:
            nonlocal detail
            response = await client.get(f"/v1/webhook-deliveries/{delivery_id}", headers=auth(tenant))
            detail = await response.json()
            return bool(detail["status"] == status)

        await eventually(done, timeout)
        return detail

    return wait


@pytest.fixture
def deliveries_of(client, auth):  # type: ignore[no-untyped-def]
    async def list_(tenant: str = "ten_a", **query: str) -> list[dict[str, Any]]:
        response = await client.get("/v1/webhook-deliveries", params={"limit": "100", **query}, headers=auth(tenant))
        assert response.status == 200, await response.text()
        return list((await response.json())["data"])

    return list_


@pytest.fixture
def count(clean_db: AsyncEngine) -> Callable[[str], Awaitable[int]]:
    async def count_rows(table_name: str) -> int:
        table = metadata.tables[table_name]
        async with clean_db.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())

    return count_rows


def body_of(hit: Hit) -> dict[str, Any]:
    return dict(json.loads(hit.body))


@pytest.fixture(name="eventually")
def eventually_fixture() -> Callable[..., Awaitable[None]]:
    return eventually


@pytest.fixture(name="make_event")
def make_event_fixture() -> Callable[..., Any]:
    return payment_event


@pytest.fixture(name="as_message")
def as_message_fixture() -> Callable[[Any], Message]:
    return as_message
