"""Unit of Work: one transaction; the only place that commits. Events emitted during it land in the
outbox inside that same transaction."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Self

from billing_contracts.envelope import EventBase
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_runtime.outbox import write_events


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

    async def __aenter__(self) -> Self:
        self.session = self._sessionmaker()
        self._events = []
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

    @property
    def events(self) -> list[EventBase]:
        return list(self._events)

    async def commit(self) -> None:
        await self._before_commit(self._events)
        await write_events(self.session, self._outbox, self._events)
        await self.session.commit()
        wrote = bool(self._events)
        self._events = []
        if wrote and self._on_commit is not None:
            self._on_commit()

    async def _before_commit(self, events: list[EventBase]) -> None:
        """Hook for subclasses that keep more per-event rows (e.g. the tenant event log)."""

    async def rollback(self) -> None:
        self._events = []
        await self.session.rollback()
