"""One statement on a pooled connection's asyncpg connection itself, for the statements that commit
themselves (``writes.*_alone``): SQLAlchemy's execution layer around a statement (the ``Connection``
object, its cursor adapter, the execution context, the result object, the AUTOCOMMIT switch and its
reset) cost about as much CPU as asyncpg's own work on it, and those statements need none of it: they
are driver SQL compiled once, outside any transaction, their rows typed by the caller.

What the caller sees stays SQLAlchemy's. The connection is checked out of the engine's pool (its
events, its size, its timeout, its recycling), and a connection that cannot be opened fails as
``engine.connect()`` fails: wrapped in ``sqlalchemy.exc`` with the dialect's error as ``orig``, whose
cause (asyncpg's error, with its SQLSTATE) is what tells an outage apart (``billing_runtime.outages``).
An error of the statement is raised as SQLAlchemy's execution raises it (``sqlalchemy.exc.DBAPIError``
and its subclasses), with the connection, and the pool, invalidated when the server went away: the
error path hands the connection to a SQLAlchemy ``Connection`` and lets its own handling decide. A
statement cancelled mid-flight (a request's task cancelled, a shutdown) leaves its connection in an
unknown state: it is invalidated, never handed to the next caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, NoReturn, TypeVar

import asyncpg
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

T = TypeVar("T")

# What the driver raises about the connection or the statement (anything else in a block is the
# caller's own error).
_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError)


async def driver_fetch(engine: AsyncEngine, sql: str, args: tuple[Any, ...]) -> list[Any]:
    """Run ``sql`` (asyncpg's ``$n`` parameters) with ``args`` on a connection of ``engine``'s pool,
    outside any transaction: the statement commits itself. Rows as asyncpg returns them (indexable,
    iterable)."""

    async def fetch(driver: Any) -> list[Any]:
        return list(await driver.fetch(sql, *args))

    return await _on_pooled_connection(engine, fetch, sql, args, callers_errors=False)


async def driver_transaction(engine: AsyncEngine, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work(connection)`` (the asyncpg connection of a pooled connection) inside one transaction:
    BEGIN, ``work``'s statements, COMMIT, and nothing of SQLAlchemy's execution layer per statement.
    For a unit of a few statements on a hot path that must see one another under one set of locks.

    ``work`` raising (or a statement failing) rolls the transaction back before the connection goes
    back to the pool; the error comes out as ``driver_fetch``'s do (SQLAlchemy's, the connection and
    the pool invalidated when the server went away), except ``work``'s own errors, raised as they are.
    Cancelled, the connection is invalidated."""

    # ROLLBACK when the body raises, so the pool never gets an aborted transaction back (SQLAlchemy's
    # reset on check-in knows nothing of a BEGIN sent beneath it).
    async with driver_block(engine) as block:
        result = await work(block.connection)
        await block.commit()
        return result


async def _on_pooled_connection(
    engine: AsyncEngine,
    use: Callable[[Any], Awaitable[T]],
    sql: str,
    args: tuple[Any, ...],
    *,
    callers_errors: bool,
) -> T:
    """``use(asyncpg connection)`` on a connection checked out of ``engine``'s pool (``pooled_driver``)."""
    async with pooled_driver(engine, sql, args, callers_errors=callers_errors) as driver:
        return await use(driver)


@asynccontextmanager
async def pooled_driver(
    engine: AsyncEngine, sql: str = "(transaction)", args: tuple[Any, ...] = (), *, callers_errors: bool = True
) -> AsyncIterator[Any]:
    """The asyncpg connection of a connection checked out of ``engine``'s pool, given back after. A
    driver error is raised as SQLAlchemy's execution would raise it (``sql`` and ``args`` name the
    statement in it); with ``callers_errors``, any other error is the caller's, raised as it is, the
    connection still good. Cancelled (or the process exiting) meanwhile: whatever the server does with
    what was sent, the connection must not serve anyone else."""
    sync_engine = engine.sync_engine
    proxied = await greenlet_spawn(_checkout, sync_engine)
    driver = proxied.driver_connection
    try:
        assert driver is not None, "a checked-out connection has its driver connection"
        yield driver
    except Exception as error:
        if callers_errors and not isinstance(error, _DRIVER_ERRORS):
            await _give_back(proxied, driver)
            raise
        if isinstance(error, asyncpg.InternalClientError) and driver is not None:
            # asyncpg lost track of its protocol's state (a statement begun as the server's message
            # ending the session came in: "cannot switch to state ..."): the connection can serve
            # no one, and closed it is seen as what it is, a lost connection.
            driver.terminate()
        await greenlet_spawn(_raise_as_sqlalchemy, sync_engine, proxied, error, sql, args)
        raise  # _raise_as_sqlalchemy always raises; this keeps type checkers informed
    except BaseException:
        await asyncio.shield(greenlet_spawn(proxied.invalidate))
        raise
    await _give_back(proxied, driver)


async def _give_back(proxied: PoolProxiedConnection, driver: Any) -> None:
    """Back to the pool, reset as on any check-in (SQLAlchemy's rollback, which knows nothing of a
    transaction begun beneath it); or, closed under us or left inside a transaction, to no one."""
    if driver is None or driver.is_closed() or driver.is_in_transaction():
        await asyncio.shield(greenlet_spawn(proxied.invalidate))
        return
    await greenlet_spawn(proxied.close)


class DriverTransaction:
    """An open transaction on a pooled connection's asyncpg connection (``driver_block``): its
    statements go to ``connection``; ``commit`` ends it, and ``rollback`` ends it and opens the next."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self._open = False

    @property
    def open(self) -> bool:
        return self._open

    async def begin(self) -> None:
        await self.connection.execute("BEGIN")
        self._open = True

    async def commit(self) -> None:
        if not self._open:
            raise RuntimeError("the transaction has ended")
        self._open = False
        status = await self.connection.execute("COMMIT")
        if status != "COMMIT":
            # PostgreSQL ends a transaction that an error aborted with a ROLLBACK, whatever it is
            # asked: a statement of it failed and its error was caught and not let out. Nothing was
            # kept, and the unit must not be taken for committed.
            raise RuntimeError(f"the transaction was not committed ({status}): a statement in it failed")

    async def rollback(self) -> None:
        await self.end()
        await self.begin()

    async def end(self) -> None:
        """Roll back what was not committed (nothing after ``commit``)."""
        if self._open:
            self._open = False
            await self.connection.execute("ROLLBACK")


@asynccontextmanager
async def driver_block(engine: AsyncEngine) -> AsyncIterator[DriverTransaction]:
    """``driver_transaction`` as a block: BEGIN on entry, the caller's statements on
    ``block.connection``, ``block.commit()`` when they are done; leaving the block without it (or by an
    error) rolls back. Errors come out as ``driver_transaction``'s do: a driver's as SQLAlchemy's, the
    caller's own as they are, and a cancelled block's connection is invalidated."""
    async with pooled_driver(engine) as driver:
        block = DriverTransaction(driver)
        await block.begin()
        try:
            yield block
        except Exception:
            # The connection may be gone with the error: the rollback then fails, the connection is
            # closed (so that no one gets it again, and a driver error is seen as a lost connection),
            # and the error that says why (translated by ``pooled_driver``) is the one raised.
            try:
                await block.end()
            except _DRIVER_ERRORS:
                driver.terminate()
            raise
        # Cancelled: no rollback awaited; ``pooled_driver`` invalidates the connection.
        await block.end()


def _checkout(engine: Engine) -> PoolProxiedConnection:
    """A connection from the pool, or the error ``engine.connect()`` raises when none can be opened
    (``Connection.__init__`` does exactly this around the same call)."""
    try:
        return engine.raw_connection()
    except engine.dialect.loaded_dbapi.Error as err:
        Connection._handle_dbapi_exception_noconnection(err, engine.dialect, engine)
        raise  # not reached: the call above raises


def _raise_as_sqlalchemy(
    engine: Engine, proxied: PoolProxiedConnection, error: Exception, sql: str, args: tuple[Any, ...]
) -> NoReturn:
    """Raise ``error`` as SQLAlchemy's execution would have: translated to the dialect's DBAPI error,
    wrapped in ``sqlalchemy.exc``, and on a disconnect the connection and the pool invalidated; the
    connection then goes back to the pool, or away if it was invalidated."""
    conn = Connection(engine, connection=proxied)
    try:
        adapter: Any = proxied.dbapi_connection
        try:
            # The asyncpg dialect's translation (asyncpg's exception → its DBAPI error, raised from it).
            adapter._handle_exception(error)
        except Exception as translated:
            # SQLAlchemy's own handling of an error from the driver: the wrapping, the disconnect
            # check, the invalidation of the connection and of the pool.
            conn._handle_dbapi_exception(translated, sql, args, None, None)
        raise error  # not reached: both calls above raise
    finally:
        conn.close()
