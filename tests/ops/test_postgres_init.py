"""ops/postgres/init-databases.sh, run as the postgres image runs it, against the suite's PostgreSQL
server with databases of the test's own names: a role and a database per service, each role barred from
the other databases, and passwords taken as data (psql variables), whatever characters they hold."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from billing_runtime.testing import PG_DSN, require_port

from .support import ROOT

SCRIPT = ROOT / "ops" / "postgres" / "init-databases.sh"
pytestmark = pytest.mark.postgres


def psql(sql: str, *, user: str | None = None, database: str = "postgres") -> subprocess.CompletedProcess[str]:
    dsn = urlsplit(PG_DSN)
    env = dict(os.environ, PGHOST=dsn.hostname or "127.0.0.1", PGPORT=str(dsn.port or 5432))
    return subprocess.run(
        ["psql", "--no-psqlrc", "-tA", "-U", user or dsn.username or "postgres", "-d", database, "-c", sql],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.fixture
def names() -> Iterator[list[str]]:
    dsn = urlsplit(PG_DSN)
    require_port(dsn.hostname or "127.0.0.1", dsn.port or 5432, "PostgreSQL")
    prefix = f"opsinit_{secrets.token_hex(3)}"
    created = [f"{prefix}_payments", f"{prefix}_webhooks"]
    yield created
    for name in created:
        psql(f'DROP DATABASE IF EXISTS "{name}"')
        psql(f'DROP ROLE IF EXISTS "{name}"')


def run_script(names: list[str], passwords: dict[str, str]) -> subprocess.CompletedProcess[str]:
    dsn = urlsplit(PG_DSN)
    env = dict(
        os.environ,
        PGHOST=dsn.hostname or "127.0.0.1",
        PGPORT=str(dsn.port or 5432),
        POSTGRES_USER=dsn.username or "postgres",
        BILLING_DATABASES=" ".join(names),
    )
    for name, password in passwords.items():
        env[f"{name.upper()}_DB_PASSWORD"] = password
    return subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=120, check=False)


def test_a_database_and_a_role_per_service(names: list[str]) -> None:
    own, other = names
    hostile = "pw'; DROP ROLE postgres; --\"$x"
    result = run_script(names, {own: hostile, other: secrets.token_urlsafe(48)})
    assert result.returncode == 0, result.stderr
    for name in names:  # the test's own names (hex): nothing to quote
        owner = psql(f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{name}'")  # noqa: S608
        assert owner.stdout.strip() == name
        has_password = psql(f"SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = '{name}'")  # noqa: S608
        assert has_password.stdout.strip() == "t"
    assert psql("SELECT current_user", user=own, database=own).stdout.strip() == own
    refused = psql("SELECT 1", user=own, database=other)
    assert refused.returncode != 0 and "permission denied" in refused.stderr


def test_a_missing_password_stops_it(names: list[str]) -> None:
    result = run_script(names, {names[0]: secrets.token_urlsafe(48)})
    assert result.returncode != 0
    assert f"{names[1].upper()}_DB_PASSWORD is not set" in result.stderr
