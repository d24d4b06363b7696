"""checkout-web's own schema (dashboard sessions, sign-in counters): ``checkout-web migrate`` creates
it, runs again harmlessly, and refuses to start without its session keys."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from billing_runtime.testing import create_test_database, drop_test_database
from checkout_web.__main__ import SERVICE_ROOT, main

from .conftest import CHECKOUT_ROOT, SESSION_KEYS


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {row["tablename"] for row in rows}
    finally:
        await conn.close()


@pytest.fixture
async def scratch_url() -> AsyncIterator[str]:
    url = await create_test_database("checkout_migrations", CHECKOUT_ROOT, revision="base")
    yield url
    await drop_test_database(url)


class TestMigrate:
    async def test_cli_migrate_creates_the_schema_and_is_idempotent(
        self, scratch_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        assert SERVICE_ROOT == CHECKOUT_ROOT
        monkeypatch.setenv("CHECKOUT_DATABASE_URL", scratch_url)
        monkeypatch.setenv("CHECKOUT_SESSION_KEYS", SESSION_KEYS)
        await asyncio.to_thread(main, ["migrate"])
        await asyncio.to_thread(main, ["migrate"])
        assert {"dashboard_sessions", "dashboard_login_attempts"} <= await _tables(scratch_url)

    def test_refuses_to_start_without_session_keys(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.delenv("CHECKOUT_SESSION_KEYS", raising=False)
        with pytest.raises(SystemExit) as info:
            main(["serve"])
        assert info.value.code == 2
        assert "CHECKOUT_SESSION_KEYS" in capsys.readouterr().err
