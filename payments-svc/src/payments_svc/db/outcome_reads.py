"""The one read a provider outcome is decided on: the payment, whether refund verdicts are parked on
it, and its attempts, in one round trip and one snapshot, outside any transaction (the consumer's writes
then carry ``payment_unchanged``, so a payment that moved after this read is read and decided again)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from billing_runtime.db import table_of
from billing_runtime.uow import UnitOfWork
from sqlalchemy import Select, bindparam, exists, select

from payments_svc.db.models import ParkedRefundVerdict, Payment, PaymentAttempt
from payments_svc.db.repositories import payment_from_row

# The attempts' columns are prefixed in the joined row (the payment's own keep their names).
_ATTEMPT = "a_"


@dataclass(frozen=True)
class OutcomeSnapshot:
    payment: Payment | None
    # Refund verdicts wait on the payment: the consumer replays them after the outcome (almost never);
    # one parked after this read is replayed by the sweeper. True for an unknown payment, whose
    # verdicts (if any) are due, as ``parked_verdicts.due`` says.
    has_parked_verdicts: bool
    attempts: list[PaymentAttempt]  # oldest first


@functools.cache
def _payment_parked_and_attempts() -> Select[Any]:
    payments, parked, attempts = table_of(Payment), table_of(ParkedRefundVerdict), table_of(PaymentAttempt)
    waiting = exists().where(parked.c.payment_id == payments.c.id).label("has_parked_verdicts")
    # One row per attempt (a payment has a handful at most), the payment's columns repeated; one row
    # with the attempt's columns NULL for a payment without attempts.
    return (
        select(*payments.c, waiting, *(c.label(_ATTEMPT + c.key) for c in attempts.c))
        .select_from(payments.outerjoin(attempts, attempts.c.payment_id == payments.c.id))
        # By the primary key alone, the tenant checked on the row read. With ``tenant_id = :tenant_id`` in
        # the WHERE clause as well, PostgreSQL's generic plan for this prepared statement, made while the
        # tables were new and small, walked ix_payments_tenant_order instead of the key: every one of the
        # tenant's payments read per outcome (1,976 buffers for one row, measured with auto_explain in
        # the lifecycle bench), for as long as the plan stayed cached.
        .where(payments.c.id == bindparam("id"))
        .order_by(attempts.c.created_at, attempts.c.id)
    )


async def outcome_snapshot(uow: UnitOfWork, tenant_id: str, payment_id: str) -> OutcomeSnapshot:
    rows = await uow.read_unlocked(_payment_parked_and_attempts(), {"id": payment_id})
    if not rows or rows[0]["tenant_id"] != tenant_id:  # another tenant's payment is no payment of this one
        return OutcomeSnapshot(None, True, [])
    keys = [c.key for c in table_of(PaymentAttempt).c]
    attempts = [
        PaymentAttempt(**{key: row[_ATTEMPT + key] for key in keys}) for row in rows if row[_ATTEMPT + "id"] is not None
    ]
    return OutcomeSnapshot(payment_from_row(rows[0]), bool(rows[0]["has_parked_verdicts"]), attempts)
