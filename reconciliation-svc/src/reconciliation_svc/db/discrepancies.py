"""Queries on discrepancies. ``record_discrepancy`` is what every finder calls (the matcher, the anomaly
consumer): one INSERT ... ON CONFLICT (dedupe_key) DO NOTHING, inside the caller's transaction."""

from __future__ import annotations

from billing_contracts.envelope import utcnow
from billing_runtime.db import table_of
from billing_runtime.ids import new_id
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from reconciliation_svc.db.models import DiscrepancyRow
from reconciliation_svc.domain.discrepancies import NewDiscrepancy

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
