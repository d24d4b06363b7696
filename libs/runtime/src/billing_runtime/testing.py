"""Helpers for the services' test suites: real PostgreSQL databases per test run, table truncation,
and broker reachability that fails loudly (tests never skip because a server is down)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import AsyncEngine

from billing_runtime.migrations import upgrade_async

PG_DSN = os.environ.get("BILLING_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
# The broker the tests use, without a virtual host: each test run (and a test that needs one of its own)
# works in a vhost it creates (``scratch_vhost``), so concurrent runs never share a queue.
RABBIT_BASE_URL = "amqp://guest:guest@127.0.0.1:5672/"
RABBIT_URL_ENV = "BILLING_TEST_RABBIT_URL"


def _sqlalchemy_url(dsn: str, database: str) -> str:
    base = dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{database}"


def fresh_python(code: str) -> str:
    """What ``code`` prints, run by a new interpreter of this environment: for what a process does
    from its start (what it imports, what it builds), which the test process has done long ago."""
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60)  # noqa: S603 (the tests' own code)
    return done.stdout


def free_port() -> int:
    """A loopback port for a server a test is about to start, reserved in TIME_WAIT: no other ``bind(0)``
    (ours or another process's) is handed it for a minute, while the server, which binds with
    SO_REUSEADDR as aiohttp does, still can. A port merely bound and released can be handed out again
    at once, and two servers of one test were started on the same port that way."""
    from ephemeral_port_reserve import reserve

    return int(reserve("127.0.0.1"))


def require_port(host: str, port: int, what: str) -> None:
    """Fail (never skip) when a server the tests need is not listening."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return
    except OSError as exc:
        raise RuntimeError(f"{what} is not reachable at {host}:{port}; start it (see README)") from exc


async def create_test_database(prefix: str, service_root: Path, *, revision: str = "head") -> str:
    """Create ``<prefix>_test_<pid>`` afresh, migrate it with the service's Alembic (to ``revision``;
    ``"base"``: nothing), return its URL."""
    require_port("127.0.0.1", 5432, "PostgreSQL")
    name = f"{prefix}_test_{os.getpid()}"
    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = _sqlalchemy_url(PG_DSN, name)
    if revision != "base":
        await upgrade_async(service_root, url, revision)
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
        await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


# A plain (non-unique, non-partial, no expression) index whose key columns lead another plain index's
# on the same table: every write pays for it and every read it serves the other one serves.
_REDUNDANT_INDEXES = text(
    """
    SELECT a.indrelid::regclass::text AS table_name, a.indexrelid::regclass::text AS redundant,
           b.indexrelid::regclass::text AS covered_by
    FROM pg_index a
    JOIN pg_index b ON b.indrelid = a.indrelid AND b.indexrelid <> a.indexrelid
    JOIN pg_class c ON c.oid = a.indrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
    WHERE NOT a.indisunique
      AND a.indpred IS NULL AND b.indpred IS NULL AND a.indexprs IS NULL AND b.indexprs IS NULL
      AND (b.indkey::text = a.indkey::text OR b.indkey::text LIKE a.indkey::text || ' %')
    ORDER BY 1, 2
    """
)


async def redundant_indexes(engine: AsyncEngine) -> list[tuple[str, str, str]]:
    """(table, redundant index, the index that covers it) for every index of the migrated schema that
    another one makes useless (see ``_REDUNDANT_INDEXES``): a schema test asserts there are none."""
    async with engine.connect() as conn:
        rows = (await conn.execute(_REDUNDANT_INDEXES)).all()
    return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]


def require_rabbitmq() -> str:
    """The URL of this test run's vhost (set by the root conftest), failing when the broker is down."""
    require_port("127.0.0.1", 5672, "RabbitMQ")
    return os.environ.get(RABBIT_URL_ENV, RABBIT_BASE_URL)


def rabbit_url_for(vhost: str) -> str:
    return RABBIT_BASE_URL + quote(vhost, safe="")


@contextlib.contextmanager
def scratch_vhost(name: str) -> Iterator[str]:
    """A RabbitMQ virtual host of the caller's own, deleted afterwards; yields its URL. Queue names are
    fixed per service, so on a shared vhost another test run's workers could consume (or its tests purge
    or delete) the queues a test counts on. Needs rabbitmqctl beside the broker, as ``.ci/run`` has to
    start it: without it this fails, it never skips."""
    require_port("127.0.0.1", 5672, "RabbitMQ")
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        raise RuntimeError("rabbitmqctl is not on PATH: the tests need it for RabbitMQ vhosts of their own")
    _rabbitmqctl(ctl, "add_vhost", name)
    try:
        _rabbitmqctl(ctl, "set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield rabbit_url_for(name)
    finally:
        _rabbitmqctl(ctl, "delete_vhost", name, check=False)


def _rabbitmqctl(ctl: str, *args: str, check: bool = True) -> None:
    # The arguments are ours (vhost names the tests make), never outside input.
    subprocess.run([ctl, *args], check=check, capture_output=True)  # noqa: S603


_LOCK_WAITS = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


async def finished_or_waiting_on_a_lock(engine: AsyncEngine, task: asyncio.Task[Any], *, seconds: float = 5) -> None:
    """Until ``task`` has finished or a transaction in ``engine``'s database waits on a lock: how a race
    test knows its second party has done what it can while the first holds its transaction open."""
    for _ in range(int(seconds / 0.01)):
        if task.done():
            return
        async with engine.connect() as conn:
            if (await conn.execute(_LOCK_WAITS)).scalar_one():
                return
        await asyncio.sleep(0.01)
    raise AssertionError("the second party neither finished nor waited on a lock")


@contextlib.asynccontextmanager
async def serving(argv: Sequence[str], name: str, *, start_seconds: float = 20) -> AsyncIterator[str]:
    """A helper server (``argv`` plus a free port as its last argument) run as a subprocess: its URL on
    127.0.0.1 once it accepts connections; terminated afterwards (killed if it outlives 10 s)."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(*argv, str(port))
    try:
        deadline = time.monotonic() + start_seconds
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                await writer.wait_closed()
                break
            except OSError:
                if time.monotonic() > deadline or proc.returncode is not None:
                    raise RuntimeError(f"{name} did not start") from None
                await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            async with asyncio.timeout(10):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()
