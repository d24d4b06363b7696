"""Queries of provider accounts and their assignment to tenants (``ProviderAccountRow``,
``TenantProviderAccountRow``)."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from providers_svc.db.models import ProviderAccountRow, TenantProviderAccountRow


class AccountRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, row: ProviderAccountRow) -> None:
        self.session.add(row)

    async def get(
        self, account_id: str, *, for_update: bool = False, simulators: bool = False
    ) -> ProviderAccountRow | None:
        """``simulators``: a simulator account is found too (the admin API never sees one)."""
        stmt = select(ProviderAccountRow).where(ProviderAccountRow.id == account_id)
        if not simulators:
            stmt = stmt.where(ProviderAccountRow.simulator.is_(False))
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def newest_first(
        self,
        *,
        limit: int,
        offset: int = 0,
        after: ProviderAccountRow | None = None,
        before: ProviderAccountRow | None = None,
        provider: str | None = None,
    ) -> Sequence[ProviderAccountRow]:
        """Newest first by (created_at, id), a total order even where accounts share a creation time.
        ``after``: the ones older than it, ``before``: the ones newer (cursor paging on the index
        ``ix_provider_accounts_created``, stable under inserts); otherwise ``offset`` rows skipped."""
        position = tuple_(ProviderAccountRow.created_at, ProviderAccountRow.id)
        stmt = select(ProviderAccountRow).where(ProviderAccountRow.simulator.is_(False))
        if provider is not None:
            stmt = stmt.where(ProviderAccountRow.provider == provider)
        if before is not None:
            # The nearest newer accounts, read upwards on the index and turned newest first.
            stmt = stmt.where(position > tuple_(before.created_at, before.id))
            stmt = stmt.order_by(ProviderAccountRow.created_at, ProviderAccountRow.id).limit(limit)
            return list(reversed((await self.session.execute(stmt)).scalars().all()))
        if after is not None:
            stmt = stmt.where(position < tuple_(after.created_at, after.id))
        order = (ProviderAccountRow.created_at.desc(), ProviderAccountRow.id.desc())
        stmt = stmt.order_by(*order).limit(limit).offset(offset)
        return (await self.session.execute(stmt)).scalars().all()

    async def of_provider(self, provider: str) -> Sequence[ProviderAccountRow]:
        """Every account of ``provider``, its simulator's included (callbacks find theirs among them)."""
        stmt = select(ProviderAccountRow).where(ProviderAccountRow.provider == provider).order_by(ProviderAccountRow.id)
        return (await self.session.execute(stmt)).scalars().all()

    async def simulator(self, provider: str) -> ProviderAccountRow | None:
        stmt = select(ProviderAccountRow).where(
            ProviderAccountRow.provider == provider, ProviderAccountRow.simulator.is_(True)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def add_once(self, values: dict[str, Any]) -> None:
        """Insert unless it exists (a simulator account created by two replicas at once)."""
        await self.session.execute(pg_insert(ProviderAccountRow).values(**values).on_conflict_do_nothing())

    async def is_assigned(self, account_id: str) -> bool:
        stmt = select(exists().where(TenantProviderAccountRow.account_id == account_id))
        return bool((await self.session.execute(stmt)).scalar())

    async def delete(self, row: ProviderAccountRow) -> None:
        await self.session.delete(row)


class AssignmentRepository:
    def __init__(self, session: AsyncSession, tenant_id: str) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def assign(self, provider: str, account_id: str, now: datetime) -> None:
        """One account per provider per tenant: a new assignment replaces the old one."""
        stmt = pg_insert(TenantProviderAccountRow).values(
            tenant_id=self.tenant_id, provider=provider, account_id=account_id, assigned_at=now
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[TenantProviderAccountRow.tenant_id, TenantProviderAccountRow.provider],
            set_={"account_id": stmt.excluded.account_id, "assigned_at": stmt.excluded.assigned_at},
        )
        await self.session.execute(stmt)

    async def unassign(self, provider: str) -> bool:
        stmt = delete(TenantProviderAccountRow).where(
            TenantProviderAccountRow.tenant_id == self.tenant_id, TenantProviderAccountRow.provider == provider
        )
        result = await self.session.execute(stmt)
        return bool(getattr(result, "rowcount", 0))

    async def of(self, provider: str) -> ProviderAccountRow | None:
        """The account assigned to this tenant at ``provider``."""
        stmt = (
            select(ProviderAccountRow)
            .join(TenantProviderAccountRow, ProviderAccountRow.id == TenantProviderAccountRow.account_id)
            .where(TenantProviderAccountRow.tenant_id == self.tenant_id, TenantProviderAccountRow.provider == provider)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def all(self) -> builtins.list[tuple[TenantProviderAccountRow, ProviderAccountRow]]:
        stmt = (
            select(TenantProviderAccountRow, ProviderAccountRow)
            .join(ProviderAccountRow, ProviderAccountRow.id == TenantProviderAccountRow.account_id)
            .where(TenantProviderAccountRow.tenant_id == self.tenant_id)
            .order_by(TenantProviderAccountRow.provider)
        )
        return [(assignment, account) for assignment, account in (await self.session.execute(stmt)).all()]
