from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from billing_runtime.migrations import upgrade_async
from billing_runtime.testing import create_test_database, drop_test_database
from gateway.__main__ import SERVICE_ROOT, main

from .conftest import GATEWAY_ROOT


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {row["tablename"] for row in rows}
    finally:
        await conn.close()


@pytest.fixture
async def scratch_url() -> AsyncIterator[str]:
    """An empty database of this test's own (created, migrated to nothing, then dropped)."""
    url = await create_test_database("gateway_migrations", GATEWAY_ROOT, revision="base")
    yield url
    await drop_test_database(url)


class TestMigrations:
    async def test_upgrade_creates_the_schema_and_is_idempotent(self, scratch_url: str) -> None:
        assert await _tables(scratch_url) <= {"alembic_version"}
        await upgrade_async(GATEWAY_ROOT, scratch_url)
        await upgrade_async(GATEWAY_ROOT, scratch_url)
        assert {"tenants", "alembic_version"} <= await _tables(scratch_url)

    async def test_cli_migrate(self, scratch_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        assert SERVICE_ROOT == GATEWAY_ROOT
        monkeypatch.setenv("GATEWAY_DATABASE_URL", scratch_url)
        # Every command reads the whole settings, secrets included (the same environment as `api`).
        monkeypatch.setenv("GATEWAY_JWT_KEYS", "k:" + "j" * 32)
        monkeypatch.setenv("GATEWAY_PAYMENTS_INTERNAL_SECRET", "p" * 32)
        monkeypatch.setenv("GATEWAY_WEBHOOKS_INTERNAL_SECRET", "w" * 32)
        monkeypatch.setenv("GATEWAY_PROVIDERS_INTERNAL_SECRET", "v" * 32)
        # The command runs its own event loop, as from a shell: off this test's loop.
        await asyncio.to_thread(main, ["migrate"])
        await asyncio.to_thread(main, ["migrate"])  # idempotent
        assert "tenants" in await _tables(scratch_url)
