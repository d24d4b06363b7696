"""What counts as a database outage (503, a consumer waits) and what does not (500, poison): every case
from the SQLSTATE and severity the server sends, then the same on a real PostgreSQL taken away the way
an operator does it (ALLOW_CONNECTIONS false and terminated backends), and on a stopped server's Unix socket."""

from __future__ import annotations

import asyncio
import errno
import os
import secrets
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web
from billing_runtime.app import service_app
from billing_runtime.db import create_engine
from billing_runtime.metrics import Metrics
from billing_runtime.outages import is_database_outage
from billing_runtime.testing import PG_DSN, require_port
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def pg_error(sqlstate: str, severity: str = "ERROR", message: str = "m") -> asyncpg.PostgresError:
    """The exception asyncpg raises for an ErrorResponse the server sent."""
    error = asyncpg.PostgresError.new({"C": sqlstate, "M": message, "S": severity, "V": severity})
    assert isinstance(error, asyncpg.PostgresError)
    return error


def wrapped(error: Exception) -> sa_exc.DBAPIError:
    """``error`` as SQLAlchemy's asyncpg dialect hands it to the application."""
    dbapi = AsyncAdapt_asyncpg_dbapi
    mapping = {asyncpg.InterfaceError: dbapi.InterfaceError}
    adapted = mapping.get(type(error), dbapi.Error)(str(error), error)
    adapted.__cause__ = error
    result = sa_exc.DBAPIError.instance("SELECT 1", {}, adapted, dbapi.Error)
    assert isinstance(result, sa_exc.DBAPIError)
    return result


OUTAGES = {
    "55000 FATAL: database does not allow connections": pg_error("55000", "FATAL"),
    "57P01 admin shutdown (pg_terminate_backend)": pg_error("57P01", "FATAL"),
    "57P02 crash shutdown": pg_error("57P02", "FATAL"),
    "57P03 cannot connect now (starting up, in recovery)": pg_error("57P03", "FATAL"),
    "57P04 database dropped": pg_error("57P04", "FATAL"),
    "57P05 idle session timeout": pg_error("57P05", "FATAL"),
    "53300 too many connections": pg_error("53300", "FATAL"),
    "53100 disk full": pg_error("53100"),
    "53200 out of memory": pg_error("53200"),
    "58030 I/O error": pg_error("58030"),
    "08006 connection failure": pg_error("08006", "FATAL"),
    "08P01 FATAL: protocol stream broken": pg_error("08P01", "FATAL"),
    "3D000 unknown database": pg_error("3D000", "FATAL"),
    "28P01 login rejected": pg_error("28P01", "FATAL"),
    "25006 read-only transaction (a demoted primary)": pg_error("25006"),
    "asyncpg: connection closed in the middle of an operation": asyncpg.ConnectionDoesNotExistError(
        "connection was closed in the middle of operation"
    ),
    "asyncpg: statement on a closed connection": asyncpg.InterfaceError(
        "cannot call PreparedStatement.fetch(): the underlying connection is closed"
    ),
    "connection refused": ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"),
    "connection reset": ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
    "broken pipe": BrokenPipeError(errno.EPIPE, "Broken pipe"),
    "connect timed out": TimeoutError(),
    "host unreachable": OSError(errno.EHOSTUNREACH, "No route to host"),
    "host name does not resolve": socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
    "every address of localhost failed": OSError(
        "Multiple exceptions: [Errno 111] Connect call failed ('::1', 5432, 0, 0), "
        "[Errno 111] Connect call failed ('127.0.0.1', 5432)"
    ),
    "pool timeout": sa_exc.TimeoutError("QueuePool limit of size 2 overflow 0 reached"),
}

# What the driver raises (and SQLAlchemy wraps); the pool timeout is SQLAlchemy's own.
DRIVER_OUTAGES = {k: e for k, e in OUTAGES.items() if not isinstance(e, sa_exc.SQLAlchemyError)}

NOT_OUTAGES = {
    "55000 ERROR: currval not yet defined": pg_error("55000"),
    "55P03 lock not available (NOWAIT)": pg_error("55P03"),
    "55006 object in use": pg_error("55006"),
    "08P01 ERROR: parameters that do not match the statement": pg_error("08P01"),
    "57014 query cancelled (statement_timeout)": pg_error("57014"),
    "40001 serialization failure": pg_error("40001"),
    "40P01 deadlock": pg_error("40P01"),
    "23505 unique violation": pg_error("23505"),
    "22012 division by zero": pg_error("22012"),
    "42P01 undefined table": pg_error("42P01"),
    "XX000 internal error": pg_error("XX000"),
    "asyncpg: another operation is in progress (a bug)": asyncpg.InterfaceError(
        "cannot perform operation: another operation is in progress"
    ),
    "a missing file": FileNotFoundError(errno.ENOENT, "No such file or directory"),
    "permission denied on a file": PermissionError(errno.EACCES, "Permission denied"),
    "a bare OSError": OSError("something else"),
    "a bug": KeyError("x"),
}

DRIVER_NOT_OUTAGES = {
    k: e for k, e in NOT_OUTAGES.items() if isinstance(e, asyncpg.PostgresError | asyncpg.InterfaceError)
}


class TestClassification:
    @pytest.mark.parametrize("error", OUTAGES.values(), ids=OUTAGES.keys())
    def test_outage(self, error: Exception) -> None:
        assert is_database_outage(error)

    @pytest.mark.parametrize("error", DRIVER_OUTAGES.values(), ids=DRIVER_OUTAGES.keys())
    def test_outage_through_sqlalchemy(self, error: Exception) -> None:
        assert is_database_outage(wrapped(error))

    @pytest.mark.parametrize("error", NOT_OUTAGES.values(), ids=NOT_OUTAGES.keys())
    def test_not_an_outage(self, error: Exception) -> None:
        assert not is_database_outage(error)

    @pytest.mark.parametrize("error", DRIVER_NOT_OUTAGES.values(), ids=DRIVER_NOT_OUTAGES.keys())
    def test_not_an_outage_through_sqlalchemy(self, error: Exception) -> None:
        assert not is_database_outage(wrapped(error))

    def test_a_connection_sqlalchemy_invalidated_is_an_outage(self) -> None:
        dbapi = AsyncAdapt_asyncpg_dbapi
        error = sa_exc.DBAPIError.instance(
            "SELECT 1", {}, dbapi.Error("gone"), dbapi.Error, connection_invalidated=True
        )
        assert is_database_outage(error)


# -- the same on a real PostgreSQL --------------------------------------------------------------------


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _dsn(database: str) -> str:
    return f"{PG_DSN.rsplit('/', 1)[0]}/{database}"


def _url(database: str) -> str:
    return _dsn(database).replace("postgresql://", "postgresql+asyncpg://", 1)


@pytest.fixture
async def database() -> AsyncIterator[str]:
    """A database of this test's own, which it may take away."""
    require_port("127.0.0.1", 5432, "PostgreSQL")
    name = f"outages_{os.getpid()}_{secrets.token_hex(3)}"
    await _admin(f'CREATE DATABASE "{name}"')
    yield name
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def pg(database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(_url(database), pool_size=2, max_overflow=0, pool_timeout=1)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id int PRIMARY KEY)"))
        await conn.execute(text("INSERT INTO t VALUES (1)"))
        await conn.execute(text("CREATE SEQUENCE s"))
    yield engine
    await engine.dispose()


async def _take_away(database: str) -> None:
    # CONNECTION LIMIT 0 does not stop a superuser; ALLOW_CONNECTIONS false stops everyone.
    await _admin(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", database)
    finally:
        await conn.close()


async def _raised(engine: AsyncEngine, sql: str) -> BaseException:
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    except Exception as exc:  # the error is what the test looks at
        return exc
    raise AssertionError(f"{sql!r} did not fail")


@pytest.mark.postgres
class TestRealPostgres:
    async def test_new_connection_to_a_database_that_allows_none(self, pg: AsyncEngine, database: str) -> None:
        await _take_away(database)
        await pg.dispose()  # no pooled connection: the next statement needs a new one
        error = await _raised(pg, "SELECT 1")
        assert getattr(error, "orig", None) is not None and error.orig.sqlstate == "55000"  # type: ignore[attr-defined]
        assert is_database_outage(error)
        with pytest.raises(asyncpg.PostgresError) as raw:
            await asyncpg.connect(_dsn(database))
        assert raw.value.sqlstate == "55000"
        assert is_database_outage(raw.value)

    async def test_statement_in_flight_when_its_backend_is_terminated(self, pg: AsyncEngine, database: str) -> None:
        task = asyncio.create_task(_raised(pg, "SELECT pg_sleep(30)"))
        await asyncio.sleep(0.5)
        await _take_away(database)
        assert is_database_outage(await asyncio.wait_for(task, 10))

    async def test_pooled_connection_whose_backend_was_terminated(self, pg: AsyncEngine, database: str) -> None:
        async with pg.connect() as conn:
            await conn.execute(text("SELECT 1"))
            await _take_away(database)
            await asyncio.sleep(0.2)
            with pytest.raises(sa_exc.DBAPIError) as raised:
                await conn.execute(text("SELECT 1"))
        assert is_database_outage(raised.value)

    async def test_asyncpg_losing_track_of_its_protocol_through_sqlalchemy(
        self, database: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """asyncpg's InternalClientError (a statement begun just as the server's message ending the
        session came in; a race a terminated backend shows now and then) on an engine of
        ``billing_runtime.db``: SQLAlchemy drops the connection, the error is an outage, and the next
        statements get new connections, the pool's other one renewed too, as for any lost connection
        (a server that ends one session at a restart has ended them all)."""
        pg = create_engine(_url(database), pool_size=2)
        try:

            async def pid() -> int:
                async with pg.connect() as conn:
                    await conn.execute(text("SELECT pg_sleep(0.1)"))  # both connections held at once
                    return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())

            before = set(await asyncio.gather(pid(), pid()))
            assert len(before) == 2

            async def lost(_self: object, *_args: object, **_kwargs: object) -> None:
                raise asyncpg.InternalClientError("cannot switch to state 11; another operation (2) is in progress")

            with monkeypatch.context() as patched:
                patched.setattr(asyncpg.connection.Connection, "prepare", lost)
                error = await _raised(pg, "SELECT 2")
            assert isinstance(error, sa_exc.DBAPIError)
            assert error.connection_invalidated
            assert is_database_outage(error)
            assert before.isdisjoint(await asyncio.gather(pid(), pid()))
        finally:
            await pg.dispose()

    async def test_raw_asyncpg_connection_whose_backend_was_terminated(self, database: str) -> None:
        conn = await asyncpg.connect(_dsn(database))
        try:
            await _take_away(database)
            await asyncio.sleep(0.2)
            with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError)) as raised:
                await conn.fetchval("SELECT 1")
            assert is_database_outage(raised.value)
        finally:
            conn.terminate()

    async def test_too_many_connections_for_a_role(self, database: str) -> None:
        role = f"outage_role_{secrets.token_hex(3)}"
        await _admin(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 0')
        try:
            with pytest.raises(asyncpg.PostgresError) as raised:
                await asyncpg.connect(_dsn(database).replace("postgres@", f"{role}@", 1))
            assert raised.value.sqlstate == "53300"
            assert is_database_outage(raised.value)
        finally:
            await _admin(f'DROP ROLE "{role}"')

    async def test_unknown_database(self) -> None:
        engine = create_async_engine(_url(f"missing_{secrets.token_hex(4)}"))
        try:
            assert is_database_outage(await _raised(engine, "SELECT 1"))
        finally:
            await engine.dispose()

    async def test_nothing_listening(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        engine = create_async_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/x")
        try:
            assert is_database_outage(await _raised(engine, "SELECT 1"))
        finally:
            await engine.dispose()

    async def test_pool_exhausted(self, pg: AsyncEngine) -> None:
        async with pg.connect() as a, pg.connect() as b:
            await a.execute(text("SELECT 1"))
            await b.execute(text("SELECT 1"))
            assert is_database_outage(await _raised(pg, "SELECT 1"))

    async def test_lock_not_available_is_not_an_outage(self, pg: AsyncEngine) -> None:
        async with pg.connect() as holder:
            await holder.execute(text("SELECT * FROM t FOR UPDATE"))
            error = await _raised(pg, "SELECT * FROM t FOR UPDATE NOWAIT")
        assert error.orig.sqlstate == "55P03"  # type: ignore[attr-defined]
        assert not is_database_outage(error)

    async def test_55000_error_of_a_statement_is_not_an_outage(self, pg: AsyncEngine) -> None:
        error = await _raised(pg, "SELECT currval('s')")
        assert error.orig.sqlstate == "55000"  # type: ignore[attr-defined]
        assert not is_database_outage(error)

    async def test_statement_timeout_is_not_an_outage(self, pg: AsyncEngine) -> None:
        async with pg.connect() as conn:
            await conn.execute(text("SET statement_timeout = 50"))
            with pytest.raises(sa_exc.DBAPIError) as raised:
                await conn.execute(text("SELECT pg_sleep(2)"))
        error = raised.value
        assert error.orig.sqlstate == "57014"  # type: ignore[attr-defined]
        assert not is_database_outage(error)

    @pytest.mark.parametrize(
        "sql", ["INSERT INTO t VALUES (1)", "SELECT 1 / 0", "SELECT * FROM missing", "SELEC 1"], ids=str
    )
    async def test_bad_statement_is_not_an_outage(self, pg: AsyncEngine, sql: str) -> None:
        assert not is_database_outage(await _raised(pg, sql))


@pytest.mark.postgres
class TestHttpAnswerDuringARealOutage:
    """The shared error middleware that every service's app is built with (``service_app``)."""

    async def test_503_with_retry_after_and_back_to_200(self, aiohttp_client, pg: AsyncEngine, database: str) -> None:  # type: ignore[no-untyped-def]
        app = service_app(Metrics("t"), checks={}, internal_secret=None, internal_audience="t")

        async def read(_request: web.Request) -> web.Response:
            async with pg.connect() as conn:
                return web.json_response({"n": (await conn.execute(text("SELECT count(*) FROM t"))).scalar()})

        app.router.add_get("/read", read)
        client = await aiohttp_client(app)
        assert (await client.get("/read")).status == 200
        await _take_away(database)
        for _ in range(3):  # the pooled connection that died, then fresh connections refused
            r = await client.get("/read")
            assert r.status == 503
            assert r.headers["Retry-After"]
            assert r.content_type == "application/problem+json"
            assert (await r.json())["code"] == "database_unavailable"
        await _admin(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        assert (await client.get("/read")).status == 200


# -- a server on a Unix socket (the embedded mode's) ------------------------------------------------


class TestUnixSocket:
    async def test_a_server_whose_socket_is_gone_is_an_outage(self, tmp_path: Path) -> None:
        # The embedded mode's server when it is stopped: its socket directory holds no socket.
        engine = create_engine(f"postgresql+asyncpg://postgres@/postgres?host={tmp_path}")
        try:
            error = await _raised(engine, "SELECT 1")
            assert isinstance(error, ConnectionRefusedError)
            assert is_database_outage(error)
        finally:
            await engine.dispose()

    async def test_a_missing_file_elsewhere_is_not_an_outage(self) -> None:
        assert not is_database_outage(FileNotFoundError(2, "No such file or directory"))
