"""reconciliation-svc fixtures: a real PostgreSQL database per run (migrated by Alembic), emptied before
each test; the app with an in-memory bus; internal tokens as the gateway signs them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from billing_runtime.bus import MemoryBus
from billing_runtime.db import create_engine
from billing_runtime.internal_auth import INTERNAL_HEADER, sign_internal
from billing_runtime.testing import create_test_database, drop_test_database, truncate_all
from reconciliation_svc.app import INTERNAL_AUDIENCE, create_app
from reconciliation_svc.db.models import metadata
from reconciliation_svc.settings import Settings
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

SERVICE_ROOT = Path(__file__).resolve().parents[1]
INTERNAL_SECRET = "test-recon-internal-secret-0123456789abcdef"
PROVIDERS_SECRET = "test-recon-providers-secret-0123456789abcdef"
PAYMENTS_SECRET = "test-recon-payments-secret-0123456789abcdef"
# Port 9 (discard) on loopback: nothing listens there, so a call the test did not point at a fake is
# refused at once and never leaves the machine.
NOBODY_LISTENS = "http://127.0.0.1:9"


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


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "internal_secret": INTERNAL_SECRET,
        "providers_internal_secret": PROVIDERS_SECRET,
        "payments_internal_secret": PAYMENTS_SECRET,
        "providers_url": NOBODY_LISTENS,
        "payments_url": NOBODY_LISTENS,
        "request_timeout": 5,
        # Tests run passes themselves (or shorten this); the worker's own loop stays out of their way.
        "janitor_interval": 3600,
        "metrics_interval": 3600,
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


def admin_headers(issuer: str = "gateway", secret: str = INTERNAL_SECRET) -> dict[str, str]:
    """What the gateway adds to an admin call it forwards (no tenant: a platform call)."""
    return {INTERNAL_HEADER: sign_internal(secret, issuer=issuer, audience=INTERNAL_AUDIENCE, tenant_id=None)}


@pytest.fixture(name="admin")
def admin_fixture() -> dict[str, str]:
    return admin_headers()


@pytest.fixture(name="admin_headers")
def admin_headers_fixture() -> Callable[..., dict[str, str]]:
    return admin_headers


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


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
