"""Test helpers: faults on resources a test owns: a PostgreSQL database reached through a role of the test's own, whose
connections can be refused (``CONNECTION LIMIT 0``, SQLSTATE 53300) and cut (its backends terminated)
without touching anyone else's, and the test run's RabbitMQ vhost's connections closed."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import unquote

import asyncpg

from billing_runtime.testing import PG_DSN, require_port


@dataclass
class OwnDatabase:
    name: str
    role: str

    @property
    def url(self) -> str:
        host = PG_DSN.split("@", 1)[1].rsplit("/", 1)[0]
        return f"postgresql+asyncpg://{self.role}@{host}/{self.name}"

    async def refuse(self) -> None:
        """Refuse new connections of the role and cut the open ones: the database is down for us."""
        await _as_admin(
            (f'ALTER ROLE "{self.role}" CONNECTION LIMIT 0',),
            ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", self.role),
        )

    async def accept(self) -> None:
        await _as_admin((f'ALTER ROLE "{self.role}" CONNECTION LIMIT -1',))

    async def take_away(self) -> None:
        """As an operator takes a database away: ``ALLOW_CONNECTIONS false`` (refuses everyone, a
        superuser too, with SQLSTATE 55000) and the open connections cut."""
        await _as_admin(
            (f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false',),
            ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", self.name),
        )

    async def give_back(self) -> None:
        await _as_admin((f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true',))


async def _as_admin(*statements: tuple[str, ...]) -> None:
    """Each ``(sql, *args)`` in turn on one superuser connection."""
    conn = await asyncpg.connect(PG_DSN)
    try:
        for sql, *args in statements:
            await conn.execute(sql, *args)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def own_database(setup_sql: str = "") -> AsyncIterator[OwnDatabase]:
    require_port("127.0.0.1", 5432, "PostgreSQL")
    suffix = secrets.token_hex(4)
    db = OwnDatabase(name=f"outage_{suffix}", role=f"outage_{suffix}")
    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(f'CREATE ROLE "{db.role}" LOGIN')
        await conn.execute(f'CREATE DATABASE "{db.name}" OWNER "{db.role}"')
    finally:
        await conn.close()
    if setup_sql:
        own = await asyncpg.connect(db.url.replace("postgresql+asyncpg://", "postgresql://", 1))
        try:
            await own.execute(setup_sql)
        finally:
            await own.close()
    try:
        yield db
    finally:
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)')
            await conn.execute(f'DROP ROLE IF EXISTS "{db.role}"')
        finally:
            await conn.close()


def close_vhost_connections(url: str) -> None:
    """Close every client connection of the vhost in ``url`` (this test run's own) from the broker."""
    ctl = shutil.which("rabbitmqctl")
    assert ctl is not None, "rabbitmqctl must be on PATH"
    vhost = url.rsplit("/", 1)[1]

    subprocess.run(  # noqa: S603 - our own vhost name
        [ctl, "close_all_connections", "-p", unquote(vhost), "test fault"], check=True, capture_output=True
    )
