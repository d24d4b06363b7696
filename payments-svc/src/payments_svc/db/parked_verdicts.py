"""``parked_refund_verdicts``: refund verdicts that came before their payment was captured, and their
queries (services/refund_verdicts.py parks them, services/parked_verdicts.py replays them)."""

from __future__ import annotations

import functools
from typing import Any

from billing_contracts.envelope import utcnow
from billing_contracts.events import ProviderRefundUpdatedV1
from billing_runtime.uow import UnitOfWork
from sqlalchemy import Select, and_, bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from payments_svc.db.models import ParkedRefundVerdict, Payment
from payments_svc.domain.payment import PaymentStatus

# A payment whose success may still come: a verdict on it waits for it.
NOT_CAPTURED_YET = (PaymentStatus.CREATED, PaymentStatus.PROVIDER_PENDING, PaymentStatus.AUTHORIZED)


def park(session: AsyncSession, event: ProviderRefundUpdatedV1, raw: bytes | None) -> None:
    """Keep the verdict (added to the session: written by the unit's commit, with its inbox row)."""
    body = raw.decode() if raw is not None else event.model_dump_json()
    session.add(
        ParkedRefundVerdict(
            event_id=event.event_id,
            tenant_id=event.tenant_id,
            payment_id=event.data.payment_id,
            body=body,
            provider_updated_at=event.data.provider_updated_at,
            parked_at=utcnow(),
        )
    )


async def unpark(session: AsyncSession, event_id: str) -> bool:
    """Take a parked verdict out (its row locked until the transaction ends, so two replays of it apply
    it once); False when it is no longer parked (replayed already)."""
    stmt = delete(ParkedRefundVerdict).where(ParkedRefundVerdict.event_id == event_id)
    return bool((await session.execute(stmt.returning(ParkedRefundVerdict.event_id))).first())


@functools.cache
def _due(for_payment: bool) -> Select[Any]:
    stmt = (
        select(ParkedRefundVerdict.body)
        .join(Payment, Payment.id == ParkedRefundVerdict.payment_id, isouter=True)
        # Inequalities, not NOT IN: a list parameter would change the SQL compiled once.
        .where(Payment.status.is_(None) | and_(*(Payment.status != str(s) for s in NOT_CAPTURED_YET)))
        .order_by(ParkedRefundVerdict.provider_updated_at, ParkedRefundVerdict.parked_at)
        .limit(bindparam("limit"))
    )
    return stmt.where(ParkedRefundVerdict.payment_id == bindparam("payment_id")) if for_payment else stmt


async def due(uow: UnitOfWork, *, payment_id: str | None = None, limit: int = 100) -> list[str]:
    """Bodies of parked verdicts whose payment settled (captured, or final without money), in the
    provider's order (each payment's verdicts replayed as they would have been applied). Unlocked, one
    round trip: asked after an outcome whose payment had verdicts parked, and by every sweeper pass."""
    params: dict[str, Any] = {"limit": limit}
    if payment_id is not None:
        params["payment_id"] = payment_id
    rows = await uow.read_unlocked(_due(payment_id is not None), params)
    return [row["body"] for row in rows]
