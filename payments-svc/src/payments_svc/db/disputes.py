"""Queries of the disputes table. A dispute is looked up by the provider's id of it, across tenants on
purpose: the provider's id names one dispute of one payment, and a state naming it for another payment
(or tenant) must be found to be refused (``services/disputes.py``)."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from billing_runtime.db import table_of
from billing_runtime.uow import UnitOfWork
from billing_runtime.writes import InsertRows, UpdateRows
from sqlalchemy import Select, bindparam, select

from payments_svc.db.models import Dispute


@functools.cache
def _by_provider_id() -> Select[Any]:
    table = table_of(Dispute)
    return select(*table.c).where(
        table.c.provider == bindparam("provider"), table.c.provider_dispute_id == bindparam("provider_dispute_id")
    )


async def dispute_by_provider_id(uow: UnitOfWork, provider: str, provider_dispute_id: str) -> Dispute | None:
    """The dispute as held now, unlocked and outside the session (as ``payment_snapshot``): read after
    the payment, whose row version then covers it (every change of a dispute changes its payment)."""
    rows = await uow.read_unlocked(
        _by_provider_id(), {"provider": provider, "provider_dispute_id": provider_dispute_id}
    )
    return Dispute(**rows[0]) if rows else None


# What a new state of a dispute changes on its row.
STATE_COLUMNS = (
    "status",
    "reason",
    "amount",
    "currency",
    "funds_withdrawn",
    "evidence_due_by",
    "provider_updated_at",
    "closed_at",
    "updated_at",
)


def dispute_insert(dispute: Dispute) -> InsertRows:
    table = table_of(Dispute)
    return InsertRows(table, [{column.key: getattr(dispute, column.key) for column in table.c}])


def dispute_update(dispute: Dispute, held_status: str, held_updated_at: datetime) -> UpdateRows:
    """The UPDATE of a dispute to its new state, only while the row still holds the state it was decided
    against (a second guard beside the payment's: no older state can land over a newer one)."""
    return UpdateRows(
        table_of(Dispute),
        where={"id": dispute.id, "status": held_status, "provider_updated_at": held_updated_at},
        values={column: getattr(dispute, column) for column in STATE_COLUMNS},
    )
