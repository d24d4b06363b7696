from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from billing_runtime.migrations import upgrade_async
from billing_runtime.testing import create_test_database, drop_test_database
from reconciliation_svc.__main__ import SERVICE_ROOT, main
from reconciliation_svc.db.models import metadata
from sqlalchemy.ext.asyncio import AsyncEngine

TABLES = {
    "recon_payments",
    "recon_refunds",
    "recon_provider_transactions",
    "recon_provider_refunds",
    "discrepancies",
    "discrepancy_changes",
    "inbox",
}


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {row["tablename"] for row in rows}
    finally:
        await conn.close()


@pytest.fixture
async def scratch_url() -> AsyncIterator[str]:
    url = await create_test_database("reconciliation_migrations", SERVICE_ROOT, revision="base")
    yield url
    await drop_test_database(url)


class TestMigrations:
    async def test_upgrade_creates_the_schema_and_is_idempotent(self, scratch_url: str) -> None:
        assert await _tables(scratch_url) <= {"alembic_version"}
        await upgrade_async(SERVICE_ROOT, scratch_url)
        await upgrade_async(SERVICE_ROOT, scratch_url)
        assert await _tables(scratch_url) >= TABLES

    async def test_cli_migrate(self, scratch_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("RECONCILIATION_DATABASE_URL", scratch_url)
        # Every command reads the whole settings, secrets included (the same environment as `api`).
        monkeypatch.setenv("RECONCILIATION_INTERNAL_SECRET", "i" * 32)
        monkeypatch.setenv("RECONCILIATION_PROVIDERS_INTERNAL_SECRET", "v" * 32)
        monkeypatch.setenv("RECONCILIATION_PAYMENTS_INTERNAL_SECRET", "p" * 32)
        await asyncio.to_thread(main, ["migrate"])
        assert await _tables(scratch_url) >= TABLES

    def test_cli_refuses_to_start_without_its_secrets(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in ("INTERNAL_SECRET", "PROVIDERS_INTERNAL_SECRET", "PAYMENTS_INTERNAL_SECRET"):
            monkeypatch.delenv(f"RECONCILIATION_{name}", raising=False)
        with pytest.raises(SystemExit) as exited:
            main(["migrate"])
        assert exited.value.code == 2

    async def test_the_migrated_schema_matches_the_models(self, engine: AsyncEngine) -> None:
        async with engine.connect() as conn:
            diff = await conn.run_sync(lambda sync: compare_metadata(MigrationContext.configure(sync), metadata))
        assert diff == []
