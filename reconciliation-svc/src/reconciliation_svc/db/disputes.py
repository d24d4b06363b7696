"""The disputes' projection write: one guarded upsert per reported state (``provider.dispute.updated``),
whatever order the states of one dispute arrive in.

What reconciliation needs of a dispute is the money it moved, and when: the movements are kept as two
times that every arrival order agrees on (``withdrawn_at``, the earliest state with the funds withdrawn;
``released_at``, the latest without), so no state has to be applied in order. A dispute whose funds
were withdrawn and then given back (a won dispute) has ``released_at > withdrawn_at``; a lost one keeps
them withdrawn in every later state. The status, amount and currency are the latest state's by the
provider's clock, and a closed dispute keeps its outcome (as payments-svc's DSP-2)."""

from __future__ import annotations

from datetime import datetime

from billing_contracts.events import ProviderDispute
from billing_contracts.events.disputes import CLOSED_DISPUTE_STATUSES
from billing_runtime.db import table_of
from sqlalchemy import and_, case, func, not_, or_
from sqlalchemy.dialects.postgresql import Insert
from sqlalchemy.dialects.postgresql import insert as pg_insert

from reconciliation_svc.db.models import ReconDispute


def upsert_dispute(state: ProviderDispute, tenant_id: str, now: datetime) -> Insert:
    """A reported state of a dispute: its funds' times merged into the stored ones, its status (amount,
    currency) taken when it is the latest and does not reopen or turn a closed outcome."""
    table = table_of(ReconDispute)
    at = state.provider_updated_at
    stmt = pg_insert(table).values(
        provider=state.provider,
        provider_dispute_id=state.provider_dispute_id,
        payment_id=state.payment_id,
        provider_transaction_id=state.provider_transaction_id,
        tenant_id=tenant_id,
        livemode=state.livemode,
        status=state.status,
        amount=state.amount,
        currency=state.currency,
        withdrawn_at=at if state.funds_withdrawn else None,
        released_at=None if state.funds_withdrawn else at,
        provider_updated_at=at,
        updated_at=now,
    )
    ex = stmt.excluded
    closed = table.c.status.in_(CLOSED_DISPUTE_STATUSES)
    newer = and_(
        table.c.provider_updated_at < ex.provider_updated_at,
        or_(not_(closed), ex.status == table.c.status),
    )
    return stmt.on_conflict_do_update(
        index_elements=["provider", "provider_dispute_id"],
        set_={
            # LEAST and GREATEST skip NULLs: each side's time where only one has it.
            "withdrawn_at": func.least(table.c.withdrawn_at, ex.withdrawn_at),
            "released_at": func.greatest(table.c.released_at, ex.released_at),
            **{col: case((newer, ex[col]), else_=table.c[col]) for col in ("status", "amount", "currency")},
            "provider_updated_at": func.greatest(table.c.provider_updated_at, ex.provider_updated_at),
            "updated_at": ex.updated_at,
        },
    )
