"""Engines, sessions and column types (PostgreSQL, the one SQL dialect of every mode)."""

from __future__ import annotations

import errno
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import DateTime, MetaData, Table, event, text
from sqlalchemy.engine import Dialect, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    """Return a MetaData with the naming convention every service uses (stable Alembic names)."""
    return MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp (timestamptz); a naive datetime is refused rather than guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.astimezone(UTC)


def table_of(model: type[Any]) -> Table:
    """The ``Table`` of an ORM class (``__table__`` is typed as any ``FromClause``), for the Core
    writes and reads that take a table."""
    table = model.__table__
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not mapped to a table")
    return table


def create_engine(url: str, *, pool_size: int = 20, echo: bool = False) -> AsyncEngine:
    """Create an async engine for a ``postgresql+asyncpg://`` URL (a Unix socket: ``?host=/dir``)."""
    # A fixed pool (no overflow; see ServiceSettings.database_pool_size).
    # No pool_pre_ping: it costs a round trip on every checkout (two per request on the hot path).
    # A connection the server dropped fails its first statement instead; SQLAlchemy then invalidates
    # the pool, the request answers 503, and its transaction never committed, so nothing is half-done.
    engine = create_async_engine(url, echo=echo, pool_size=pool_size, max_overflow=0, pool_recycle=1800)
    event.listen(engine.sync_engine, "do_connect", _connect)
    event.listen(engine.sync_engine, "handle_error", _lost_protocol)
    return engine


def _lost_protocol(context: ExceptionContext) -> None:
    """asyncpg's ``InternalClientError`` ("cannot switch to state ...": a statement begun just as the
    server's message ending the session came in) leaves a connection whose protocol state asyncpg no
    longer knows, and that it may not have seen closed yet: SQLAlchemy is told it is a lost connection,
    so it drops it (never handed on) and the error reads as the outage it is (``billing_runtime.outages``).
    Like any lost connection it also renews the rest of the pool: the race shows when the server ended
    the session, as a restart ends every one of them (left in the pool, the others were handed out dead,
    one failed request each)."""
    error: BaseException | None = context.original_exception
    while error is not None:
        if isinstance(error, asyncpg.InternalClientError):
            context.is_disconnect = True
            return
        error = error.__cause__


def _connect(dialect: Dialect, _record: object, cargs: tuple[Any, ...], cparams: dict[str, Any]) -> Any:
    """Connect as SQLAlchemy would, but report a Unix socket that is not there (the embedded mode's
    server is stopped: its socket file is gone) as the refused connection it is, not as a missing
    file, so ``billing_runtime.outages`` classes it as an outage (503), like a refused TCP port."""
    try:
        return dialect.connect(*cargs, **cparams)
    except FileNotFoundError as exc:
        raise ConnectionRefusedError(errno.ECONNREFUSED, f"no database server at its socket ({exc.strerror})") from exc


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions never expire attributes on commit, so objects stay readable after the UoW ends."""
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(engine: AsyncEngine) -> None:
    """Raise if the database cannot answer ``SELECT 1``."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
