"""The self-committing statements sent by asyncpg itself (billing_runtime.driver): errors come out as
SQLAlchemy's would, a connection the server dropped is invalidated with the pool, and a statement
cancelled mid-flight never hands its connection to the next caller."""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from billing_runtime.db import create_engine
from billing_runtime.outages import is_database_outage, is_lock_conflict
from billing_runtime.prepared import InTransaction, fetch_alone, transaction_alone
from billing_runtime.testing_faults import own_database
from billing_runtime.writes import InsertRows, execute_alone
from sqlalchemy import bindparam, func, insert, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from .conftest import PG_DSN

BACKEND = select(func.pg_backend_pid().label("pid"))
SLEEP = select(func.pg_sleep(30).label("slept"))


async def _pid(engine: AsyncEngine) -> int:
    [row] = await fetch_alone(engine, BACKEND, {})
    return int(row["pid"])


async def _terminate(pid: int) -> None:
    admin = await asyncpg.connect(PG_DSN)
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


async def _cancelled_mid_statement(engine: AsyncEngine, sleep: Callable[[], Awaitable[object]]) -> None:
    """``sleep()`` (a statement that runs for 30 s on ``engine``'s single pooled connection) is cancelled
    mid-flight: the next caller must get a new connection, not the one still busy with it."""
    first = await _pid(engine)
    sleeping = asyncio.create_task(sleep())
    await asyncio.sleep(0.3)
    sleeping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeping
    second = await asyncio.wait_for(_pid(engine), timeout=5)
    assert second != first
    await _terminate(first)


class TestDriverErrors:
    async def test_a_constraint_violation_is_sqlalchemys_integrity_error_with_the_sqlstate(
        self, engine: AsyncEngine, schema
    ) -> None:  # type: ignore[no-untyped-def]
        assert await execute_alone(engine, [InsertRows(schema.applied, [{"event_id": "e1"}])]) is True
        with pytest.raises(sa_exc.IntegrityError) as caught:
            await execute_alone(engine, [InsertRows(schema.applied, [{"event_id": "e1"}])])
        assert getattr(caught.value.orig, "sqlstate", None) == "23505"
        assert isinstance(caught.value.orig.__cause__, asyncpg.UniqueViolationError)
        assert not caught.value.connection_invalidated
        assert not is_database_outage(caught.value) and not is_lock_conflict(caught.value)

    async def test_a_connection_the_server_dropped_is_an_outage_and_is_replaced(
        self, one_connection: AsyncEngine
    ) -> None:
        first = await _pid(one_connection)
        assert await _pid(one_connection) == first  # one pooled connection, reused
        await _terminate(first)
        with pytest.raises(sa_exc.DBAPIError) as caught:
            await _pid(one_connection)
        assert caught.value.connection_invalidated
        assert is_database_outage(caught.value)
        assert await _pid(one_connection) != first

    async def test_a_dropped_connection_invalidates_the_pool_so_the_next_caller_does_not_get_another_dead_one(
        self, engine: AsyncEngine
    ) -> None:
        two = create_engine(engine.url.render_as_string(hide_password=False), pool_size=2)
        try:
            # Two pooled connections (two statements at once), then the server drops both, as a restart does.
            nap = select(func.pg_sleep(0.2).label("slept"), func.pg_backend_pid().label("pid"))
            pids = {
                int(r[0]["pid"]) for r in await asyncio.gather(fetch_alone(two, nap, {}), fetch_alone(two, nap, {}))
            }
            assert len(pids) == 2
            for pid in pids:
                await _terminate(pid)
            with pytest.raises(sa_exc.DBAPIError) as caught:
                await _pid(two)
            assert caught.value.connection_invalidated
            # The first failure invalidated the whole pool: the other dead connection is not handed out.
            assert await _pid(two) not in pids
        finally:
            await two.dispose()

    async def test_a_cancelled_statement_never_hands_its_connection_on(self, one_connection: AsyncEngine) -> None:
        await _cancelled_mid_statement(one_connection, lambda: fetch_alone(one_connection, SLEEP, {}))


class TestTransactions:
    """``transaction_alone``: several driver statements under one BEGIN/COMMIT, rolled back whole on any
    error, and the pooled connection never handed on inside a transaction."""

    @pytest.fixture
    def add(self, schema):  # type: ignore[no-untyped-def]
        return insert(schema.applied).values(event_id=bindparam("id")).returning(schema.applied.c.event_id)

    @pytest.fixture(autouse=True)
    def _ids_of(self, schema) -> None:  # type: ignore[no-untyped-def]
        applied = schema.applied.c.event_id
        self.like = select(applied).where(applied.like(bindparam("p")))
        self.count = select(func.count().label("n")).where(applied.like(bindparam("p")))

    async def _ids(self, engine: AsyncEngine, prefix: str) -> list[str]:
        return sorted(r["event_id"] for r in await fetch_alone(engine, self.like, {"p": prefix}))

    async def test_the_statements_commit_together_and_see_each_other(self, one_connection: AsyncEngine, add) -> None:  # type: ignore[no-untyped-def]
        prefix = secrets.token_hex(4)
        seen = self.count

        async def work(tx: InTransaction) -> int:
            assert await tx.fetch(add, {"id": f"{prefix}-1"}) == [{"event_id": f"{prefix}-1"}]
            await tx.rows(add, {"id": f"{prefix}-2"})
            [row] = await tx.fetch(seen, {"p": f"{prefix}%"})
            return int(row["n"])

        assert await transaction_alone(one_connection, work) == 2
        assert await self._ids(one_connection, f"{prefix}%") == [f"{prefix}-1", f"{prefix}-2"]

    async def test_a_failing_statement_rolls_back_the_others_and_the_connection_serves_on(
        self, one_connection: AsyncEngine, add
    ) -> None:  # type: ignore[no-untyped-def]
        prefix = secrets.token_hex(4)
        pid = await _pid(one_connection)

        async def work(tx: InTransaction) -> None:
            await tx.rows(add, {"id": f"{prefix}-1"})
            await tx.rows(add, {"id": f"{prefix}-1"})  # the same key again: a unique violation

        with pytest.raises(sa_exc.IntegrityError) as caught:
            await transaction_alone(one_connection, work)
        assert getattr(caught.value.orig, "sqlstate", None) == "23505"
        assert await self._ids(one_connection, f"{prefix}%") == []
        # The same pooled connection, out of the aborted transaction (else this would fail with 25P02).
        assert await _pid(one_connection) == pid

    async def test_an_error_of_the_caller_rolls_back_too(self, one_connection: AsyncEngine, add) -> None:  # type: ignore[no-untyped-def]
        prefix = secrets.token_hex(4)

        async def work(tx: InTransaction) -> None:
            await tx.rows(add, {"id": f"{prefix}-1"})
            raise LookupError("decided against it")

        with pytest.raises(LookupError):
            await transaction_alone(one_connection, work)
        assert await self._ids(one_connection, f"{prefix}%") == []
        assert await _pid(one_connection) > 0

    async def test_a_connection_dropped_mid_transaction_is_an_outage_and_is_replaced(
        self, one_connection: AsyncEngine, add
    ) -> None:  # type: ignore[no-untyped-def]
        prefix = secrets.token_hex(4)

        async def work(tx: InTransaction) -> None:
            [row] = await tx.fetch(BACKEND, {})
            await tx.rows(add, {"id": f"{prefix}-1"})
            await _terminate(int(row["pid"]))
            await tx.rows(add, {"id": f"{prefix}-2"})

        with pytest.raises(sa_exc.DBAPIError) as caught:
            await transaction_alone(one_connection, work)
        assert is_database_outage(caught.value)
        assert await self._ids(one_connection, f"{prefix}%") == []

    async def test_a_cancelled_transaction_never_hands_its_connection_on(self, one_connection: AsyncEngine) -> None:
        async def work(tx: InTransaction) -> None:
            await tx.rows(SLEEP, {})

        await _cancelled_mid_statement(one_connection, lambda: transaction_alone(one_connection, work))


async def _connect_error(engine: AsyncEngine) -> BaseException:
    """What ``engine.connect()`` raises when it cannot open a connection: the driver path must raise the same."""
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")
    except Exception as exc:  # the error is what the test compares
        return exc
    raise AssertionError("the connection opened")


class TestConnectionsThatCannotBeOpened:
    """The pool checkout fails as ``engine.connect()`` does, so an outage is still told apart (503, not 500)."""

    async def _compare(self, engine: AsyncEngine) -> BaseException:
        expected = await _connect_error(engine)
        with pytest.raises(type(expected)) as caught:
            await fetch_alone(engine, BACKEND, {})
        assert type(caught.value) is type(expected)
        assert is_database_outage(caught.value)
        return caught.value

    async def test_a_database_that_allows_no_connection(self) -> None:
        async with own_database() as db:
            engine = create_engine(db.url, pool_size=1)
            try:
                await db.take_away()
                error = await self._compare(engine)
                # Wrapped as SQLAlchemy wraps it, the server's SQLSTATE on the dialect's error.
                assert isinstance(error, sa_exc.DBAPIError)
                assert getattr(error.orig, "sqlstate", None) == "55000"
                await db.give_back()
                assert await _pid(engine) > 0  # and it serves again once the database is back
            finally:
                await engine.dispose()

    async def test_an_unknown_database(self) -> None:
        missing = f"{PG_DSN.rsplit('/', 1)[0]}/missing_{secrets.token_hex(4)}"
        engine = create_engine(missing.replace("postgresql://", "postgresql+asyncpg://", 1), pool_size=1)
        try:
            assert isinstance(await self._compare(engine), sa_exc.DBAPIError)
        finally:
            await engine.dispose()

    async def test_nothing_listening(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        engine = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/x", pool_size=1)
        try:
            await self._compare(engine)
        finally:
            await engine.dispose()
