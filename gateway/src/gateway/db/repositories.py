"""Every query the gateway runs against its database."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.models import Tenant


class TenantRepository:
    """Tenants are platform-level rows (the admin manages them), so no tenant filter applies here."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def add(self, tenant: Tenant) -> None:
        self._session.add(tenant)

    async def flush(self) -> None:
        await self._session.flush()

    async def get(self, tenant_id: str, *, for_update: bool = False) -> Tenant | None:
        stmt = select(Tenant).where(Tenant.id == tenant_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self._session.execute(stmt)).scalar_one_or_none()

    async def get_by_app_name(self, app_name: str) -> Tenant | None:
        stmt = select(Tenant).where(Tenant.app_name == app_name)
        return (await self._session.execute(stmt)).scalar_one_or_none()

    async def newest_first(
        self, *, limit: int, offset: int = 0, starting_after: str | None = None, ending_before: str | None = None
    ) -> Sequence[Tenant]:
        """Newest first by id: ids are time-ordered and unique, so the primary key alone is the list's
        total order (no other index), and a cursor is a keyset on it: a page after (``starting_after``)
        or before (``ending_before``) a tenant's id, which tenants created meanwhile never shift."""
        if ending_before is not None:
            # The nearest newer tenants, read upwards on the index and turned newest first.
            stmt = select(Tenant).where(Tenant.id > ending_before).order_by(Tenant.id).limit(limit)
            return list(reversed((await self._session.execute(stmt)).scalars().all()))
        stmt = select(Tenant).order_by(Tenant.id.desc()).limit(limit).offset(offset)
        if starting_after is not None:
            stmt = stmt.where(Tenant.id < starting_after)
        return (await self._session.execute(stmt)).scalars().all()
