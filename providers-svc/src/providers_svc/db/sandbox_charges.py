"""The sandbox bank's ledger (``sandbox_charges``): one decision per transaction (PRV-6), the holds of
manual-capture payments and their capture or release, and the queue of callbacks the bank owes."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from providers_svc.db.models import SandboxChargeRow


async def _insert_ignore(session: AsyncSession, values: dict[str, Any]) -> bool:
    """``INSERT ... ON CONFLICT DO NOTHING``; True when the row was inserted."""
    result = await session.execute(pg_insert(SandboxChargeRow).values(**values).on_conflict_do_nothing())
    return bool(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ChargeDecision:
    transaction_id: str
    outcome: str
    event_id: str | None
    callback_body: str | None
    due_at: datetime | None


@dataclass(frozen=True)
class DueCallback:
    transaction_id: str
    event_id: str
    body: str
    attempts: int


class SandboxChargeRepository:
    """The sandbox bank's ledger (``sandbox_charges``) and its callback queue."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def decide_once(self, decision: ChargeDecision, now: datetime) -> bool:
        """Record the bank's decision unless one exists: the unique key is what makes a concurrent
        "pay" and "cancel" exclusive (PRV-6)."""
        return await _insert_ignore(
            self._session,
            {
                "transaction_id": decision.transaction_id,
                "outcome": decision.outcome,
                "event_id": decision.event_id,
                "callback_body": decision.callback_body,
                "due_at": decision.due_at,
                "attempts": 0,
                "created_at": now,
            },
        )

    async def move(self, txn_id: str, current: str, target: str, *, captured_amount: int | None = None) -> bool:
        """``current`` → ``target`` (a hold captured or released), guarded: False when the charge is not
        ``current`` (decided otherwise meanwhile)."""
        values: dict[str, Any] = {"outcome": target}
        if captured_amount is not None:
            values["captured_amount"] = captured_amount
        result = await self._session.execute(
            update(SandboxChargeRow)
            .where(SandboxChargeRow.transaction_id == txn_id, SandboxChargeRow.outcome == current)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def get(self, txn_id: str) -> SandboxChargeRow | None:
        stmt = select(SandboxChargeRow).where(SandboxChargeRow.transaction_id == txn_id)
        return (await self._session.execute(stmt.execution_options(populate_existing=True))).scalar_one_or_none()

    async def claim_due(self, now: datetime, *, limit: int, lease: timedelta) -> tuple[str, list[DueCallback]]:
        """Lease up to ``limit`` due callbacks (SKIP LOCKED on PostgreSQL, so senders never collide);
        the attempt is counted at claim time, so a sender that dies mid-call still counts it."""
        t = SandboxChargeRow
        token = secrets.token_hex(8)
        due = (
            select(t.transaction_id)
            .where(
                t.due_at.is_not(None),
                t.due_at <= now,
                t.delivered_at.is_(None),
                t.gave_up_at.is_(None),
                (t.claimed_until.is_(None)) | (t.claimed_until < now),
            )
            .order_by(t.due_at)
            .limit(limit)
        )
        due = due.with_for_update(skip_locked=True)
        stmt = (
            update(t)
            .where(t.transaction_id.in_(due.scalar_subquery()))
            .values(claim_token=token, claimed_until=now + lease, attempts=t.attempts + 1)
            .returning(t.transaction_id, t.event_id, t.callback_body, t.attempts)
            .execution_options(synchronize_session=False)
        )
        rows = (await self._session.execute(stmt)).all()
        return token, [
            # A row is due only once the bank's decision wrote its callback (event id and body).
            DueCallback(transaction_id=r[0], event_id=cast(str, r[1]), body=cast(str, r[2]), attempts=r[3])
            for r in sorted(rows, key=lambda r: r[0])
        ]

    async def mark_delivered(self, txn_id: str, token: str, status: int, now: datetime) -> None:
        await self._release(txn_id, token, delivered_at=now, last_status=status, last_error=None)

    async def schedule_retry(
        self, txn_id: str, token: str, *, due_at: datetime, status: int | None, error: str
    ) -> None:
        await self._release(txn_id, token, due_at=due_at, last_status=status, last_error=error[:2000])

    async def give_up(self, txn_id: str, token: str, *, status: int | None, error: str, now: datetime) -> None:
        await self._release(txn_id, token, gave_up_at=now, last_status=status, last_error=error[:2000])

    async def _release(self, txn_id: str, token: str, **values: Any) -> None:
        # Only the holder of the lease may record the attempt; a sender whose lease ran out changes nothing.
        await self._session.execute(
            update(SandboxChargeRow)
            .where(SandboxChargeRow.transaction_id == txn_id, SandboxChargeRow.claim_token == token)
            .values(claim_token=None, claimed_until=None, **values)
            .execution_options(synchronize_session=False)
        )
