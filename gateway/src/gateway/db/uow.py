"""The unit of work: one transaction, and the only place that commits."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.db.repositories import TenantRepository


class UnitOfWork:
    """``async with uow: ...; await uow.commit()``; leaving the block without a commit rolls back.

    The gateway publishes no events, so unlike ``billing_runtime.uow.UnitOfWork`` it has no outbox.
    """

    session: AsyncSession
    tenants: TenantRepository

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def __aenter__(self) -> Self:
        self.session = self._sessionmaker()
        self.tenants = TenantRepository(self.session)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # close() ends any open transaction with a rollback but, unlike rollback(), does not expire
        # the objects read, so they stay usable once the block is left.
        await self.session.close()

    async def commit(self) -> None:
        await self.session.commit()
