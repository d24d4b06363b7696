"""Unit of Work: one transaction; the only place that commits. Events emitted during it land in the
outbox inside that same transaction, together with the writes queued on it."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Self

from billing_contracts.envelope import EventBase
from sqlalchemy import Engine, Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_runtime.outbox import outbox_insert
from billing_runtime.writes import Write, execute_together


class UnitOfWork:
    """``async with uow: ...; await uow.commit()``. Leaving the block without commit rolls back.

    Services subclass it to hang their repositories on ``self`` in ``_open``.
    """

    session: AsyncSession

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

    async def __aenter__(self) -> Self:
        self.session = self._sessionmaker()
        self._events = []
        self._writes = []
        self._open()
        return self

    def _open(self) -> None:
        """Hook for subclasses: build repositories from ``self.session``."""

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # close() rolls back anything uncommitted; unlike rollback() it does not expire loaded objects,
        # so what a read-only block loaded stays readable after it.
        await self.session.close()

    def emit(self, event: EventBase) -> None:
        """Queue an event; it is written to the outbox when (and only if) the UoW commits."""
        self._events.append(event)

    async def autocommit(self) -> None:
        """From now on, each statement of this unit commits on its own (PostgreSQL only; elsewhere a
        no-op, and ``commit`` commits as usual). Call it before the first statement, and only when
        every statement is safe alone, as a single conditional INSERT or UPDATE is."""
        bind = self.session.get_bind()
        if isinstance(bind, Engine) and bind.dialect.name == "postgresql":
            await self.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})

    def write(self, stmt: Write) -> None:
        """Queue an INSERT/UPDATE/DELETE; it runs when (and only if) the UoW commits, after pending ORM
        changes are flushed and together with the outbox rows: one round trip on PostgreSQL (see
        ``execute_together``), so queued writes must not depend on each other's effects."""
        self._writes.append(stmt)

    @property
    def events(self) -> list[EventBase]:
        return list(self._events)

    async def commit(self) -> None:
        await self._before_commit(self._events)
        writes = self._writes
        if self._events:
            writes = [*writes, outbox_insert(self._outbox, self._events)]
        session = self.session
        if session.new or session.dirty or session.deleted:
            await session.flush()
        elif writes and not session.in_transaction():
            # Nothing was read or written yet, so the writes are this unit's whole transaction, and on
            # PostgreSQL execute_together makes them one statement, which is atomic and durable on its
            # own: let it commit itself and spare the BEGIN and COMMIT round trips.
            await self.autocommit()
        await execute_together(session, writes)
        await session.commit()
        wrote = bool(self._events)
        self._events = []
        self._writes = []
        if wrote and self._on_commit is not None:
            self._on_commit()

    async def _before_commit(self, events: list[EventBase]) -> None:
        """Hook for subclasses that keep more per-event rows (e.g. the tenant event log): queue them
        with ``write``."""

    async def rollback(self) -> None:
        self._events = []
        self._writes = []
        await self.session.rollback()
