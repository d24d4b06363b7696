"""Fixtures: a real PostgreSQL database (migrated once per run, truncated per test), fake upstreams
that are real aiohttp servers on loopback, and a gateway client built with ``create_app``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from billing_runtime.db import create_engine
from billing_runtime.testing import create_test_database, drop_test_database, truncate_all
from gateway.app import create_app
from gateway.db.models import metadata
from gateway.settings import Settings
from sqlalchemy.ext.asyncio import AsyncEngine

from .support import (
    ADMIN_TOKEN,
    INTERNAL_KEYS,
    JWT_AUDIENCE,
    JWT_ISSUER,
    JWT_KEYS,
    FakeUpstream,
    Gateway,
)

GATEWAY_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    url = await create_test_database("gateway", GATEWAY_ROOT)
    yield url
    await drop_test_database(url)


@pytest.fixture(scope="session")
async def session_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture
async def engine(session_engine: AsyncEngine) -> AsyncEngine:
    await truncate_all(session_engine, metadata)
    return session_engine


@pytest.fixture
async def payments(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> FakeUpstream:
    fake = FakeUpstream()
    server = await aiohttp_server(fake.app)
    fake.url = str(server.make_url("/")).rstrip("/")
    return fake


@pytest.fixture
async def providers(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> FakeUpstream:
    fake = FakeUpstream()
    server = await aiohttp_server(fake.app)
    fake.url = str(server.make_url("/")).rstrip("/")
    return fake


@pytest.fixture
async def webhooks(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> FakeUpstream:
    fake = FakeUpstream()
    server = await aiohttp_server(fake.app)
    fake.url = str(server.make_url("/")).rstrip("/")
    return fake


@pytest.fixture
async def reconciliation(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> FakeUpstream:
    fake = FakeUpstream()
    server = await aiohttp_server(fake.app)
    fake.url = str(server.make_url("/")).rstrip("/")
    return fake


@pytest.fixture
def make_settings(
    database_url: str,
    payments: FakeUpstream,
    providers: FakeUpstream,
    webhooks: FakeUpstream,
    reconciliation: FakeUpstream,
) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "admin_token": ADMIN_TOKEN,
            "payments_internal_secret": INTERNAL_KEYS["payments"],
            "webhooks_internal_secret": INTERNAL_KEYS["webhooks"],
            "providers_internal_secret": INTERNAL_KEYS["providers"],
            "reconciliation_internal_secret": INTERNAL_KEYS["reconciliation"],
            "jwt_keys": JWT_KEYS,
            "jwt_issuer": JWT_ISSUER,
            "jwt_audience": JWT_AUDIENCE,
            "payments_url": payments.url,
            "providers_url": providers.url,
            "webhooks_url": webhooks.url,
            "reconciliation_url": reconciliation.url,
            "upstream_timeout": 5.0,
            "rate_limit_per_second": 0,
            # The token endpoint's throttles are off unless a test sets them (test_token_throttle.py).
            "token_rate_per_client": 1000,
            "token_burst_per_client": 1000,
            "token_rate_per_app": 1000,
            "token_burst_per_app": 1000,
            "hash_rate": 1000,
            "hash_burst": 1000,
            # Cheap argon2 parameters keep the suite fast; the algorithm and code paths are the same.
            "argon2_time_cost": 1,
            "argon2_memory_kib": 1024,
            "argon2_parallelism": 1,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def make_gateway(
    engine: AsyncEngine,
    make_settings: Callable[..., Settings],
    aiohttp_client: Callable[..., Awaitable[TestClient[web.Request, web.Application]]],
) -> Callable[..., Awaitable[Gateway]]:
    async def make(**overrides: Any) -> Gateway:
        settings = make_settings(**overrides)
        client = await aiohttp_client(create_app(settings, engine=engine))
        return Gateway(client, settings)

    return make


@pytest.fixture
async def gateway(make_gateway: Callable[..., Awaitable[Gateway]]) -> Gateway:
    return await make_gateway()
