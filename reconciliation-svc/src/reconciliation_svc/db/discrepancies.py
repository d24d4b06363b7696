"""Queries on discrepancies. ``record_discrepancy`` is what every finder calls (the matcher, the anomaly
consumer): one INSERT ... ON CONFLICT (dedupe_key) DO NOTHING, inside the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass

from billing_contracts.envelope import utcnow
from billing_runtime.db import table_of
from billing_runtime.ids import new_id
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from reconciliation_svc.db.models import DiscrepancyChange, DiscrepancyRow
from reconciliation_svc.domain.discrepancies import Change, Discrepancy, NewDiscrepancy

DISCREPANCY_ID_PREFIX = "dsc"


async def record_discrepancy(session: AsyncSession, found: NewDiscrepancy) -> bool:
    """Store ``found`` as an open discrepancy unless one with its dedupe key exists (whatever that one's
    state): True when it is new. The caller's transaction commits it (REC-1)."""
    now = utcnow()
    stmt = (
        pg_insert(table_of(DiscrepancyRow))
        .values(
            id=new_id(DISCREPANCY_ID_PREFIX),
            kind=found.kind,
            provider=found.provider,
            account_id=found.account_id,
            tenant_id=found.tenant_id,
            payment_id=found.payment_id,
            refund_id=found.refund_id,
            provider_reference=found.provider_reference,
            dedupe_key=found.dedupe_key,
            ours=dict(found.ours) if found.ours is not None else None,
            theirs=dict(found.theirs) if found.theirs is not None else None,
            detail=found.detail,
            state="open",
            run_id=found.run_id,
            detected_at=found.detected_at or now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
    )
    result = await session.execute(stmt)
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _discrepancy(row: DiscrepancyRow, changes: tuple[Change, ...] = ()) -> Discrepancy:
    return Discrepancy(
        id=row.id,
        kind=row.kind,
        provider=row.provider,
        dedupe_key=row.dedupe_key,
        detail=row.detail,
        state=row.state,
        detected_at=row.detected_at,
        updated_at=row.updated_at,
        account_id=row.account_id,
        tenant_id=row.tenant_id,
        payment_id=row.payment_id,
        refund_id=row.refund_id,
        provider_reference=row.provider_reference,
        ours=row.ours,
        theirs=row.theirs,
        state_reason=row.state_reason,
        changed_by=row.changed_by,
        changed_at=row.changed_at,
        run_id=row.run_id,
        changes=changes,
    )


@dataclass(frozen=True)
class DiscrepancyFilter:
    kind: str | None = None
    provider: str | None = None
    state: str | None = None
    tenant_id: str | None = None


class DiscrepancyRepository:
    """Every query on discrepancies and their audit trail (platform-wide: an admin's view, no tenant)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def page(self, where: DiscrepancyFilter, *, limit: int, starting_after: str | None) -> list[Discrepancy]:
        """Newest first (ids are time-ordered), ``limit`` rows after the cursor."""
        stmt = select(DiscrepancyRow).order_by(DiscrepancyRow.id.desc()).limit(limit)
        for column, value in (
            (DiscrepancyRow.kind, where.kind),
            (DiscrepancyRow.provider, where.provider),
            (DiscrepancyRow.state, where.state),
            (DiscrepancyRow.tenant_id, where.tenant_id),
        ):
            if value is not None:
                stmt = stmt.where(column == value)
        if starting_after is not None:
            stmt = stmt.where(DiscrepancyRow.id < starting_after)
        return [_discrepancy(row) for row in (await self.session.scalars(stmt)).all()]

    async def get(self, discrepancy_id: str, *, for_update: bool = False) -> Discrepancy | None:
        stmt = select(DiscrepancyRow).where(DiscrepancyRow.id == discrepancy_id)
        if for_update:
            stmt = stmt.with_for_update()
        row = (await self.session.scalars(stmt)).one_or_none()
        if row is None:
            return None
        changes = await self.session.scalars(
            select(DiscrepancyChange)
            .where(DiscrepancyChange.discrepancy_id == discrepancy_id)
            .order_by(DiscrepancyChange.id)
        )
        return _discrepancy(
            row,
            tuple(Change(c.from_state, c.to_state, c.reason, c.changed_by, c.changed_at) for c in changes.all()),
        )

    async def change_state(self, current: Discrepancy, change: Change) -> None:
        """Move ``current`` (read FOR UPDATE in this transaction) to ``change.to_state`` and write the
        audit row: both or neither (REC-5)."""
        await self.session.execute(
            update(DiscrepancyRow)
            .where(DiscrepancyRow.id == current.id, DiscrepancyRow.state == change.from_state)
            .values(
                state=change.to_state,
                state_reason=change.reason,
                changed_by=change.changed_by,
                changed_at=change.changed_at,
                updated_at=change.changed_at,
            )
        )
        self.session.add(
            DiscrepancyChange(
                discrepancy_id=current.id,
                from_state=change.from_state,
                to_state=change.to_state,
                reason=change.reason,
                changed_by=change.changed_by,
                changed_at=change.changed_at,
            )
        )
        await self.session.flush()

    async def counts(self) -> list[tuple[str, str, str, int]]:
        """(kind, provider, state, count) for the gauge."""
        stmt = select(DiscrepancyRow.kind, DiscrepancyRow.provider, DiscrepancyRow.state, func.count()).group_by(
            DiscrepancyRow.kind, DiscrepancyRow.provider, DiscrepancyRow.state
        )
        return [(k, p, s, int(n)) for k, p, s, n in (await self.session.execute(stmt)).all()]
