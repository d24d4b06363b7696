from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from billing_runtime.migrations import upgrade
from gateway.__main__ import SERVICE_ROOT, main

GATEWAY_ROOT = Path(__file__).resolve().parents[1]


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


class TestMigrations:
    def test_upgrade_runs_on_sqlite(self, tmp_path: Path) -> None:
        db = tmp_path / "gateway.db"
        upgrade(GATEWAY_ROOT, f"sqlite+aiosqlite:///{db}")
        assert {"tenants", "alembic_version"} <= _tables(db)

    def test_cli_migrate(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        assert SERVICE_ROOT == GATEWAY_ROOT
        db = tmp_path / "cli.db"
        monkeypatch.setenv("GATEWAY_DATABASE_URL", f"sqlite+aiosqlite:///{db}")
        # Every command reads the whole settings, secrets included (the same environment as `api`).
        monkeypatch.setenv("GATEWAY_JWT_KEYS", "k:" + "j" * 32)
        monkeypatch.setenv("GATEWAY_PAYMENTS_INTERNAL_SECRET", "p" * 32)
        monkeypatch.setenv("GATEWAY_WEBHOOKS_INTERNAL_SECRET", "w" * 32)
        main(["migrate"])
        main(["migrate"])  # idempotent
        assert "tenants" in _tables(db)
