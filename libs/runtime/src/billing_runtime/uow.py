"""Unit of Work: one transaction; the only place that commits. Events emitted during it land in the
outbox inside that same transaction, together with the writes queued on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Self

from billing_contracts.envelope import EventBase
from sqlalchemy import Engine, Insert, Table, Update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from billing_runtime.driver import DriverTransaction, driver_block
from billing_runtime.outbox import outbox_insert
from billing_runtime.prepared import (
    AnySelect,
    Executor,
    InTransaction,
    fetch_alone,
    fetch_prepared,
    returning_alone,
    returning_prepared,
)
from billing_runtime.writes import (
    InsertRows,
    Precondition,
    UpdateRows,
    Write,
    execute_alone,
    execute_guarded,
    execute_together,
)


class UnitOfWork:
    """``async with uow: ...; await uow.commit()``. Leaving the block without commit rolls back.

    Services subclass it to offer their repositories (built on use from ``self.session``). The
    session is opened on first use: a unit that only queues writes never needs one (see ``_commit``).

    ``async with uow.driven(): ...`` is the same unit without an ORM session: its transaction is
    sent by asyncpg itself (``billing_runtime.driver.driver_block``) and its statements go through
    ``statements`` as driver SQL compiled once, for a hot path whose repositories need nothing of the
    ORM. Its queued writes must be plain (``InsertRows``/``UpdateRows``), and ``session`` refuses.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        outbox: Table,
        *,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._outbox = outbox
        self._on_commit = on_commit
        self._events: list[EventBase] = []
        self._writes: list[Write] = []
        self._session: AsyncSession | None = None
        self._block: DriverTransaction | None = None
        self._driven: InTransaction | None = None

    @property
    def engine(self) -> AsyncEngine | None:
        """The engine the unit's sessions bind to (for statements that run outside its transaction)."""
        bind = self._sessionmaker.kw.get("bind")
        return bind if isinstance(bind, AsyncEngine) else None

    async def read_unlocked(self, query: AnySelect, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """A read the unit decides on without locking (its writes then carry a ``Precondition``):
        outside any transaction, so a unit whose writes are one statement stays two round trips; in
        the unit's session when it is bound to a connection (tests). ``query`` as for ``fetch_prepared``."""
        engine = self.engine
        if engine is not None:
            return await fetch_alone(engine, query, params)
        return await fetch_prepared(self.session, query, params)

    async def write_alone(self, stmt: Insert | Update, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """One INSERT/UPDATE ... RETURNING that is safe alone (``returning_alone``), committed by
        itself, outside the unit's transaction and its queued writes: one round trip. In the unit's
        session when it is bound to a connection (tests), where ``commit`` then commits it."""
        engine = self.engine
        if engine is not None:
            return await returning_alone(engine, stmt, params)
        return await returning_prepared(self.session, stmt, params)

    @property
    def session(self) -> AsyncSession:
        if self._block is not None:
            raise RuntimeError("a driven unit of work has no ORM session: use its statements")
        if self._session is None:
            self._session = self._sessionmaker()
        return self._session

    @property
    def statements(self) -> Executor:
        """Where the unit's driver SQL goes (``fetch_prepared`` and its kin): the driven unit's
        connection, or else the ORM session's transaction."""
        if self._driven is not None:
            if self._block is None or not self._block.open:
                raise RuntimeError("a driven unit of work ends with its commit")
            return self._driven
        return self.session

    @asynccontextmanager
    async def driven(self) -> AsyncIterator[Self]:
        """This unit (``async with``), its transaction sent by asyncpg itself (see the class). A
        session bound to a connection (tests) keeps the session: its transaction is the test's."""
        engine = self.engine
        if engine is None:
            async with self:
                yield self
            return
        async with driver_block(engine) as block, self:
            self._block, self._driven = block, InTransaction(block.connection, engine.dialect)
            try:
                yield self
            finally:
                self._block = self._driven = None

    async def __aenter__(self) -> Self:
        self._session = None
        self._events = []
        self._writes = []
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # close() rolls back anything uncommitted; unlike rollback() it does not expire loaded objects,
        # so what a read-only block loaded stays readable after it.
        if self._session is not None:
            await self._session.close()

    def emit(self, event: EventBase) -> None:
        """Queue an event; it is written to the outbox when (and only if) the UoW commits."""
        self._events.append(event)

    async def autocommit(self) -> None:
        """From now on, each statement of this unit commits on its own (a no-op for a session bound to
        a connection, as in tests: ``commit`` then commits as usual). Call it before the first
        statement, and only when every statement is safe alone, as a single conditional INSERT or
        UPDATE is."""
        bind = self.session.get_bind()
        if isinstance(bind, Engine):
            _connection = await self.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})

    def write(self, stmt: Write) -> None:
        """Queue an INSERT/UPDATE/DELETE; it runs when (and only if) the UoW commits, after pending ORM
        changes are flushed and together with the outbox rows: one round trip (see
        ``execute_together``), so queued writes must not depend on each other's effects."""
        self._writes.append(stmt)

    @property
    def events(self) -> list[EventBase]:
        return list(self._events)

    async def commit(self) -> None:
        await self._commit(None)

    async def commit_unless_exists(self, guard: InsertRows, precondition: Precondition | None = None) -> bool:
        """Commit this unit together with the one-row ``guard`` insert, or write nothing at all if a
        row with the guard's unique key already exists; True when committed. A unit
        that only queued writes and events (nothing read or added) is then one round trip: the
        "claim a key and apply the effect" of an idempotent request, for instance. The queued writes
        and events must be plain ``InsertRows``/``UpdateRows`` (see ``execute_guarded``). With a
        ``precondition``, nothing is written either unless it holds (False: a duplicate, or it failed)."""
        return await self._commit(guard, precondition)

    async def _commit(self, guard: InsertRows | None, precondition: Precondition | None = None) -> bool:
        await self._before_commit(self._events)
        writes = self._writes
        if self._events:
            writes = [*writes, outbox_insert(self._outbox, self._events)]
        if self._block is not None:
            if guard is not None:
                raise TypeError("a driven unit of work commits without a guard")
            if not self._block.open and not writes:
                return self._committed()  # committed already, and nothing queued since: as a session's
            if writes:
                await execute_together(self.statements, writes)
            await self._block.commit()
            return self._committed()
        touched = self._session is not None and (
            self._session.in_transaction() or self._session.new or self._session.dirty or self._session.deleted
        )
        if not touched:
            # Nothing was read or added: the writes are this unit's whole transaction, and they are
            # one statement, atomic and durable on its own. It commits itself (no BEGIN and COMMIT
            # round trips), sent without a session at all.
            engine = self.engine
            if engine is not None and _all_plain(writes):
                if not await execute_alone(engine, _plain(writes), guard, precondition):
                    return self._discard()
                return self._committed()
        session = self.session
        if session.new or session.dirty or session.deleted:
            await session.flush()
        elif not session.in_transaction() and (writes or guard is not None):
            # Nothing was read or written yet: the single statement below commits itself.
            await self.autocommit()
        if guard is None:
            await execute_together(session, writes)
        elif not await execute_guarded(session, guard, _plain(writes), precondition):
            await self.rollback()
            return False
        await session.commit()
        return self._committed()

    def _committed(self) -> bool:
        wrote = bool(self._events)
        self._events = []
        self._writes = []
        if wrote and self._on_commit is not None:
            self._on_commit()
        return True

    def _discard(self) -> bool:
        self._events = []
        self._writes = []
        return False

    async def _before_commit(self, events: list[EventBase]) -> None:
        """Hook for subclasses that keep more per-event rows (e.g. the tenant event log): queue them
        with ``write``."""

    async def rollback(self) -> None:
        self._events = []
        self._writes = []
        if self._block is not None:
            await self._block.rollback()
        if self._session is not None:
            await self._session.rollback()


def _all_plain(writes: list[Write]) -> bool:
    return all(isinstance(w, InsertRows | UpdateRows) for w in writes)


def _plain(writes: list[Write]) -> list[InsertRows | UpdateRows]:
    plain = [w for w in writes if isinstance(w, InsertRows | UpdateRows)]
    if len(plain) != len(writes):
        raise TypeError("a guarded commit takes only InsertRows/UpdateRows writes")
    return plain
