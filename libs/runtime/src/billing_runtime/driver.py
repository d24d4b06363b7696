"""One statement on a pooled connection's asyncpg connection itself, for the statements that commit
themselves (``writes.*_alone``): SQLAlchemy's execution layer around a statement (its cursor adapter,
the execution context, the result object, the AUTOCOMMIT switch and its reset) cost about as much CPU
as asyncpg's own work on it, and those statements need none of it: they are driver SQL compiled once,
outside any transaction, their rows typed by the caller.

What the caller sees stays SQLAlchemy's: the connection comes from the engine's pool, and an error is
raised as SQLAlchemy raises it (``sqlalchemy.exc.DBAPIError`` and its subclasses, ``orig`` the
dialect's error, raised from asyncpg's), with the connection, and the pool, invalidated when the
server went away, exactly as SQLAlchemy's own execution would. A statement cancelled mid-flight (a
request's task cancelled, a shutdown) leaves its connection in an unknown state: it is invalidated,
never handed to the next caller.
"""

from __future__ import annotations

import asyncio
from typing import Any, NoReturn

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection


async def driver_fetch(conn: AsyncConnection, sql: str, args: tuple[Any, ...]) -> list[Any]:
    """Run ``sql`` (asyncpg's ``$n`` parameters) with ``args`` on ``conn``'s driver connection, outside
    any transaction: the statement commits itself. Rows as asyncpg returns them (indexable, iterable)."""
    proxied = await conn.get_raw_connection()
    driver = proxied.driver_connection
    assert driver is not None, "a checked-out connection has its driver connection"
    try:
        return list(await driver.fetch(sql, *args))
    except Exception as error:
        await conn.run_sync(_raise_as_sqlalchemy, error, sql, args)
        raise  # _raise_as_sqlalchemy always raises; this keeps type checkers informed
    except BaseException:
        # Cancelled (or the process is exiting) while the statement ran: whatever the server does with
        # it, this connection must not serve anyone else.
        await asyncio.shield(conn.invalidate())
        raise


def _raise_as_sqlalchemy(sync_conn: Connection, error: Exception, sql: str, args: tuple[Any, ...]) -> NoReturn:
    """Raise ``error`` as SQLAlchemy's execution would have: translated to the dialect's DBAPI error,
    wrapped in ``sqlalchemy.exc``, and on a disconnect the connection and the pool invalidated."""
    adapter: Any = sync_conn.connection.dbapi_connection
    try:
        # The asyncpg dialect's translation (asyncpg's exception → its DBAPI error, raised from it).
        adapter._handle_exception(error)
    except Exception as translated:
        # SQLAlchemy's own handling of an error from the driver: the wrapping, the disconnect check,
        # the invalidation of the connection and of the pool.
        sync_conn._handle_dbapi_exception(translated, sql, args, None, None)
    raise error  # not reached: both calls above raise
