"""reconciliation-svc fixtures: a real PostgreSQL database per run (migrated by Alembic), emptied before
each test; the app with an in-memory bus; internal tokens as the gateway signs them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from billing_contracts.envelope import EventBase
from billing_runtime.bus import MemoryBus
from billing_runtime.db import create_engine
from billing_runtime.errors import ProblemError
from billing_runtime.internal_auth import INTERNAL_HEADER, verify_internal
from billing_runtime.testing import create_test_database, drop_test_database, truncate_all
from reconciliation_svc.app import create_app
from reconciliation_svc.db.models import metadata
from reconciliation_svc.settings import Settings
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from .support import (
    PROVIDERS_SECRET,
    SERVICE_ROOT,
    FakeProviders,
    admin_headers,
    as_message,
    eventually,
    make_settings,
)


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    url = await create_test_database("reconciliation", SERVICE_ROOT)
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


@pytest.fixture(name="admin")
def admin_fixture() -> dict[str, str]:
    return admin_headers()


@pytest.fixture(name="admin_headers")
def admin_headers_fixture() -> Callable[..., dict[str, str]]:
    return admin_headers


@pytest.fixture(name="eventually")
def eventually_fixture() -> Callable[..., Awaitable[None]]:
    return eventually


@pytest.fixture
def count(clean_db: AsyncEngine) -> Callable[[str], Awaitable[int]]:
    async def count_rows(table_name: str) -> int:
        table = metadata.tables[table_name]
        async with clean_db.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())

    return count_rows


@pytest.fixture
def publish(bus: MemoryBus) -> Callable[[EventBase], Awaitable[EventBase]]:
    """Publish on the in-process bus: the worker's handler runs before this returns."""

    async def send(event: EventBase) -> EventBase:
        await bus.publish(as_message(event))
        return event

    return send


@pytest.fixture
def rows(clean_db: AsyncEngine) -> Callable[..., Awaitable[list[Any]]]:
    async def fetch(sql: str, **params: Any) -> list[Any]:
        async with clean_db.connect() as conn:
            return list((await conn.execute(text(sql), params)).all())

    return fetch


@pytest.fixture
async def fake_providers(aiohttp_server) -> FakeProviders:  # type: ignore[no-untyped-def]
    state = FakeProviders()

    async def sync(request: web.Request) -> web.Response:
        try:
            caller = verify_internal(PROVIDERS_SECRET, request.headers.get(INTERNAL_HEADER, ""), audience="providers")
        except ProblemError:
            return web.json_response({"code": "unauthorized"}, status=401)
        assert caller.tenant_id is None
        state.callers.append(caller.service)
        kind, object_id = request.match_info["kind"], request.match_info["id"]
        state.calls.append((kind, object_id))
        if state.before_answer is not None:
            await state.before_answer()
        status, body = state.answers.get(object_id, (200, {"status": "pending", "published": False}))
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_post("/internal/{kind}/{id}/sync", sync)
    server = await aiohttp_server(app)
    state.url = f"http://127.0.0.1:{server.port}"
    return state
