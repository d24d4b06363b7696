"""Helpers for the services' test suites: real PostgreSQL databases per test run, table truncation,
and broker reachability that fails loudly (tests never skip because a server is down)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import asyncpg
from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import AsyncEngine

from billing_runtime.migrations import upgrade_async

PG_DSN = os.environ.get("BILLING_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
RABBIT_URL = os.environ.get("BILLING_TEST_RABBIT_URL", "amqp://guest:guest@127.0.0.1:5672/")


def _sqlalchemy_url(dsn: str, database: str) -> str:
    base = dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{database}"


def require_port(host: str, port: int, what: str) -> None:
    """Fail (never skip) when a server the tests need is not listening."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return
    except OSError as exc:
        raise RuntimeError(f"{what} is not reachable at {host}:{port}; start it (see README)") from exc


async def create_test_database(prefix: str, service_root: Path) -> str:
    """Create ``<prefix>_test_<pid>`` afresh, migrate it with the service's Alembic, return its URL."""
    require_port("127.0.0.1", 5432, "PostgreSQL")
    name = f"{prefix}_test_{os.getpid()}"
    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = _sqlalchemy_url(PG_DSN, name)
    await upgrade_async(service_root, url)
    return url


async def drop_test_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def truncate_all(engine: AsyncEngine, metadata: MetaData) -> None:
    """Empty every table of the service. Tests use real, separately committed transactions (needed to
    test concurrency and the relay), so isolation is by truncation rather than a rolled-back savepoint."""
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    if not names:
        return
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(metadata.sorted_tables):
                await conn.execute(table.delete())


def require_rabbitmq() -> str:
    require_port("127.0.0.1", 5672, "RabbitMQ")
    return RABBIT_URL
