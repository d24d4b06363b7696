"""The sandbox bank's ledger (``sandbox_charges``): one decision per transaction (PRV-6), the holds of
manual-capture payments and their capture or release, and the queue of callbacks the bank owes."""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from billing_runtime.db import table_of
from billing_runtime.prepared import picked_once
from billing_runtime.uow import UnitOfWork
from sqlalchemy import ARRAY, Insert, Select, String, Update, bindparam, case, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from providers_svc.db.models import ProviderTransactionRow, SandboxChargeRow
from providers_svc.db.repositories import transaction_from_row
from providers_svc.domain.transactions import Transaction

_DECISION_COLUMNS = ("transaction_id", "outcome", "event_id", "callback_body", "due_at", "attempts", "created_at")


@functools.cache
def _decide_once() -> Insert:
    table = table_of(SandboxChargeRow)
    values = {c: bindparam(c, type_=table.c[c].type) for c in _DECISION_COLUMNS}
    return pg_insert(table).values(values).on_conflict_do_nothing().returning(table.c.transaction_id)


@functools.cache
def _by_transaction() -> Select[Any]:
    table = table_of(SandboxChargeRow)
    return select(*table.c).where(table.c.transaction_id == bindparam("transaction_id"))


# The charge's columns in the row joined to its transaction's (whose own keep their names).
_CHARGE = "c_"


@functools.cache
def _transaction_and_charge() -> Select[Any]:
    txn, charge = table_of(ProviderTransactionRow), table_of(SandboxChargeRow)
    return (
        select(*txn.c, *(c.label(_CHARGE + c.key) for c in charge.c))
        .select_from(txn.outerjoin(charge, charge.c.transaction_id == txn.c.id))
        .where(txn.c.id == bindparam("id", type_=String))
    )


@functools.cache
def _claim_due() -> Update:
    t = table_of(SandboxChargeRow)
    due = (
        select(t.c.transaction_id)
        .where(
            t.c.due_at.is_not(None),
            t.c.due_at <= bindparam("now", type_=t.c.due_at.type),
            t.c.delivered_at.is_(None),
            t.c.gave_up_at.is_(None),
            (t.c.claimed_until.is_(None)) | (t.c.claimed_until < bindparam("now", type_=t.c.due_at.type)),
        )
        .order_by(t.c.due_at)
        .limit(bindparam("limit"))
        .with_for_update(skip_locked=True)
    )
    return (
        update(t)
        .where(picked_once(t.c.transaction_id, due))
        .values(claim_token=bindparam("token"), claimed_until=bindparam("until"), attempts=t.c.attempts + 1)
        .returning(t.c.transaction_id, t.c.event_id, t.c.callback_body, t.c.attempts)
    )


@functools.cache
def _next_due() -> Select[Any]:
    # When the sender has something to do next: the earliest owed callback, or the end of a lease a
    # sender holds on one (a claim that a crashed sender left runs out then). Over the owed rows only
    # (``ix_sandbox_charges_owed``): a handful, delivered ones are not scanned.
    t = table_of(SandboxChargeRow)
    ready = case((t.c.claimed_until > t.c.due_at, t.c.claimed_until), else_=t.c.due_at)
    return select(func.min(ready).label("next")).where(
        t.c.due_at.is_not(None), t.c.delivered_at.is_(None), t.c.gave_up_at.is_(None)
    )


@functools.cache
def _release(columns: tuple[str, ...]) -> Update:
    # Only the holder of the lease may record the attempt; a sender whose lease ran out changes nothing.
    t = table_of(SandboxChargeRow)
    values = {c: bindparam(f"v_{c}", type_=t.c[c].type) for c in columns}
    return (
        update(t)
        .where(t.c.transaction_id == bindparam("transaction_id"), t.c.claim_token == bindparam("token"))
        .values(claim_token=None, claimed_until=None, **values)
        .returning(t.c.transaction_id)
    )


@functools.cache
def _delivered() -> Update:
    # Every callback of a batch the receiver took with one status, recorded at once (the lease's holder
    # only, as ``_release``).
    t = table_of(SandboxChargeRow)
    return (
        update(t)
        .where(
            t.c.transaction_id == func.any(bindparam("ids", type_=ARRAY(String()))),
            t.c.claim_token == bindparam("token"),
        )
        .values(
            claim_token=None,
            claimed_until=None,
            delivered_at=bindparam("now", type_=t.c.delivered_at.type),
            last_status=bindparam("status", type_=t.c.last_status.type),
            last_error=None,
        )
        .returning(t.c.transaction_id)
    )


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
    """The sandbox bank's ledger (``sandbox_charges``) and its callback queue. The decision and the
    queue's statements are each one self-committing statement compiled once (the payer's click and
    every callback go through them); the moves of a hold run in the unit's transaction."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def decide_once(self, decision: ChargeDecision, now: datetime) -> bool:
        """Record the bank's decision unless one exists: the unique key is what makes a concurrent
        "pay" and "cancel" exclusive (PRV-6)."""
        values = {
            "transaction_id": decision.transaction_id,
            "outcome": decision.outcome,
            "event_id": decision.event_id,
            "callback_body": decision.callback_body,
            "due_at": decision.due_at,
            "attempts": 0,
            "created_at": now,
        }
        return bool(await self._uow.write_alone(_decide_once(), values))

    async def move(self, txn_id: str, current: str, target: str, *, captured_amount: int | None = None) -> bool:
        """``current`` → ``target`` (a hold captured or released), guarded: False when the charge is not
        ``current`` (decided otherwise meanwhile)."""
        values: dict[str, Any] = {"outcome": target}
        if captured_amount is not None:
            values["captured_amount"] = captured_amount
        result = await self._uow.session.execute(
            update(SandboxChargeRow)
            .where(SandboxChargeRow.transaction_id == txn_id, SandboxChargeRow.outcome == current)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def get(self, txn_id: str) -> SandboxChargeRow | None:
        """The charge as it is now, unlocked, outside the session (a detached row)."""
        rows = await self._uow.read_unlocked(_by_transaction(), {"transaction_id": txn_id})
        return SandboxChargeRow(**rows[0]) if rows else None

    async def with_transaction(self, txn_id: str) -> tuple[Transaction | None, SandboxChargeRow | None]:
        """The transaction (``transaction_snapshot``) and its charge (``get``) as they are now, unlocked,
        in one round trip and one snapshot: what the payer page shows and decides on."""
        rows = await self._uow.read_unlocked(_transaction_and_charge(), {"id": txn_id})
        if not rows:
            return None, None
        row = rows[0]
        txn = transaction_from_row(row)
        if row[_CHARGE + "transaction_id"] is None:
            return txn, None
        return txn, SandboxChargeRow(**{c.key: row[_CHARGE + c.key] for c in table_of(SandboxChargeRow).c})

    async def claim_due(self, now: datetime, *, limit: int, lease: timedelta) -> tuple[str, list[DueCallback]]:
        """Lease up to ``limit`` due callbacks (SKIP LOCKED, so senders never collide); the attempt is
        counted at claim time, so a sender that dies mid-call still counts it."""
        token = secrets.token_hex(8)
        params = {"now": now, "limit": limit, "token": token, "until": now + lease}
        rows = await self._uow.write_alone(_claim_due(), params)
        return token, [
            # A row is due only once the bank's decision wrote its callback (event id and body).
            DueCallback(
                transaction_id=r["transaction_id"],
                event_id=cast(str, r["event_id"]),
                body=cast(str, r["callback_body"]),
                attempts=r["attempts"],
            )
            for r in sorted(rows, key=lambda r: str(r["transaction_id"]))
        ]

    async def next_due(self) -> datetime | None:
        """When a callback falls due next (or a lease on one runs out); None when none is owed."""
        rows = await self._uow.read_unlocked(_next_due(), {})
        return rows[0]["next"] if rows else None

    async def mark_delivered(self, txn_ids: list[str], token: str, status: int, now: datetime) -> None:
        """The callbacks of ``txn_ids`` (leased with ``token``) were taken with ``status``: one statement."""
        await self._uow.write_alone(_delivered(), {"ids": txn_ids, "token": token, "status": status, "now": now})

    async def schedule_retry(
        self, txn_id: str, token: str, *, due_at: datetime, status: int | None, error: str
    ) -> None:
        await self._release(txn_id, token, due_at=due_at, last_status=status, last_error=error[:2000])

    async def give_up(self, txn_id: str, token: str, *, status: int | None, error: str, now: datetime) -> None:
        await self._release(txn_id, token, gave_up_at=now, last_status=status, last_error=error[:2000])

    async def _release(self, txn_id: str, token: str, **values: Any) -> None:
        params = {"transaction_id": txn_id, "token": token, **{f"v_{k}": v for k, v in values.items()}}
        await self._uow.write_alone(_release(tuple(values)), params)
