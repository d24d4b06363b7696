"""The janitor's two statements: claim what is due (one statement over both tables, each on its partial
index, so an idle pass is one cheap query) and record a check's answer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# A claimed object's next_check_at is moved to the lease's end, so a second worker's pass does not take
# it and a worker that dies mid-pass leaves it due again when the lease ends.
# ``id = ANY(ARRAY(...))``, not ``id IN (...)``: the due rows picked by one run of the subquery
# (``billing_runtime.prepared.picked_once`` says why).
_CLAIM = text(
    """
    WITH p AS (
        UPDATE recon_payments SET next_check_at = :lease_until
        WHERE id = ANY(ARRAY(
            SELECT id FROM recon_payments WHERE next_check_at <= :now
            ORDER BY next_check_at LIMIT :limit FOR UPDATE SKIP LOCKED
        ))
        RETURNING 'payment' AS kind, id, provider, pending_since AS since, NULL::text AS provider_refund_id
    ), r AS (
        UPDATE recon_refunds SET next_check_at = :lease_until
        WHERE id = ANY(ARRAY(
            SELECT id FROM recon_refunds WHERE next_check_at <= :now
            ORDER BY next_check_at LIMIT :limit FOR UPDATE SKIP LOCKED
        ))
        RETURNING 'refund' AS kind, id, provider, created_at AS since, provider_refund_id
    )
    SELECT kind, id, provider, since, provider_refund_id FROM p
    UNION ALL SELECT kind, id, provider, since, provider_refund_id FROM r
    """
)

_TABLES = {"payment": "recon_payments", "refund": "recon_refunds"}


@dataclass(frozen=True)
class DueCheck:
    kind: str  # payment | refund
    id: str
    provider: str | None
    # When the object became pending (a payment's pending_since, a refund's created_at).
    since: datetime
    # A refund's provider id as our record has it (None: a payment, or a refund the provider has not
    # named yet). A refund the provider started is born with it.
    provider_refund_id: str | None = None


async def claim_due(session: AsyncSession, now: datetime, lease_until: datetime, limit: int) -> list[DueCheck]:
    rows = await session.execute(_CLAIM, {"now": now, "lease_until": lease_until, "limit": limit})
    return [DueCheck(r.kind, r.id, r.provider, r.since, r.provider_refund_id) for r in rows]


async def record_check(
    session: AsyncSession,
    check: DueCheck,
    *,
    lease_until: datetime,
    now: datetime,
    result: str,
    next_check_at: datetime | None,
    counted: bool,
) -> None:
    """Record the answer; reschedule only if the object is still ours and pending (next_check_at still
    the lease's end): an event that ended the pending state meanwhile has cleared it, and stays.
    ``next_check_at`` None: never asked again (nothing providers-svc can sync)."""
    table = _TABLES[check.kind]
    # The table name comes from the fixed map above, never from input.
    stmt = text(
        f"UPDATE {table} SET checks = checks + :inc, last_checked_at = :now, last_result = :result, "  # noqa: S608
        "next_check_at = CASE WHEN next_check_at = :lease_until THEN :next ELSE next_check_at END "
        "WHERE id = :id"
    )
    params = {
        "inc": 1 if counted else 0,
        "now": now,
        "result": result,
        "lease_until": lease_until,
        "next": next_check_at,
        "id": check.id,
    }
    await session.execute(stmt, params)
