"""``stripe_intents``: what the Stripe webhooks last applied to each Stripe transaction, so that an event
older than that one (Stripe delivers out of order) is never taken for the intent's current state."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from billing_runtime.db import UTCDateTime, table_of
from billing_runtime.writes import UpdateRows
from sqlalchemy import Index, String, Text, bindparam, func, or_, select, text
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.dml import ReturningInsert

from providers_svc.db.models import Base, ProviderEventRow, ProviderTransactionRow, TenantProviderAccountRow
from providers_svc.db.repositories import to_transaction
from providers_svc.domain.transactions import Transaction


class StripeIntentRow(Base):
    """One Stripe transaction's PaymentIntent as the webhooks last saw it."""

    __tablename__ = "stripe_intents"

    transaction_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), index=True)
    # The intent's ``status`` as last applied, and the ``created`` of the event that carried it (or of
    # the newest one when the intent was re-fetched from Stripe): an event not newer is re-fetched.
    status: Mapped[str] = mapped_column(String(32))
    status_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The payer's last failed attempt (``payment_intent.payment_failed``, ``charge.failed``): the failure
    # reason if the payment fails for good later.
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


@dataclass(frozen=True)
class IntentState:
    payment_intent_id: str | None
    status: str
    status_at: datetime
    failure_code: str | None
    failure_message: str | None


_EVENT_COLUMNS = ("id", "provider", "external_id", "event_type", "transaction_id", "payload", "received_at", "result")


# Built once: the webhook runs them for every Stripe event (the ORM's construction of a statement is a
# measurable part of a call); the values are bound per call.
@functools.cache
def _claim() -> ReturningInsert[Any]:
    tenant = TenantProviderAccountRow.tenant_id
    tenants = (
        select(func.array_agg(aggregate_order_by(tenant, tenant)))
        .where(TenantProviderAccountRow.account_id == bindparam("account_id", type_=String))
        .scalar_subquery()
    )
    table = ProviderEventRow.__table__
    values = {c: bindparam(c, type_=table.c[c].type) for c in _EVENT_COLUMNS}
    return pg_insert(ProviderEventRow).values(values).on_conflict_do_nothing().returning(tenants)


def _storable(value: str | None, length: int) -> str | None:
    return None if value is None else value.replace("\x00", "")[:length]


class StripeRepository:
    """The webhook's reads and writes, in its unit of work's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def record_event(self, values: dict[str, Any]) -> bool:
        """The inbox row (``provider_events``), unless ``(provider, external_id)`` is there; True if new.
        A concurrent copy of the same event waits here for the first one's commit and then finds it."""
        return await self.claim_event(values, None) is not None

    async def claim_event(self, values: dict[str, Any], account_id: str | None) -> tuple[str, ...] | None:
        """``record_event``, and in the same statement the tenants ``account_id`` is assigned to (sorted):
        None when the event was recorded before."""
        row = (await self._session.execute(_claim(), {**values, "account_id": account_id})).first()
        if row is None:
            return None
        return tuple(row[0] or ())

    @staticmethod
    def event_result(row_id: str, result: str, transaction_id: str | None) -> UpdateRows:
        """The inbox row's result, for ``uow.write``: it goes out with the unit's other writes and its
        outbox rows in one statement at commit."""
        values = {"result": result, "transaction_id": transaction_id}
        return UpdateRows(table_of(ProviderEventRow), {"id": row_id}, values)

    async def lock_transaction(
        self, *, transaction_id: str | None = None, payment_intent_id: str | None = None
    ) -> Transaction | None:
        """A Stripe transaction, locked until the unit ends: by our id (the objects' metadata), else by
        its intent (``provider_reference``, or the intent the webhooks recorded for a session)."""
        t = ProviderTransactionRow
        stmt = select(t).where(t.provider == "stripe")
        if transaction_id is not None:
            stmt = stmt.where(t.id == transaction_id)
        elif payment_intent_id is not None:
            recorded = select(StripeIntentRow.transaction_id).where(
                StripeIntentRow.payment_intent_id == payment_intent_id
            )
            stmt = stmt.where(or_(t.provider_reference == payment_intent_id, t.id.in_(recorded.scalar_subquery())))
        else:
            return None
        stmt = stmt.limit(1).with_for_update().execution_options(populate_existing=True)
        row = (await self._session.execute(stmt)).scalar_one_or_none()
        return to_transaction(row) if row is not None else None

    async def intent_state(self, transaction_id: str) -> IntentState | None:
        row = await self._session.get(StripeIntentRow, transaction_id, populate_existing=True)
        if row is None:
            return None
        return IntentState(row.payment_intent_id, row.status, row.status_at, row.failure_code, row.failure_message)

    async def save_intent_state(self, transaction_id: str, state: IntentState, now: datetime) -> None:
        # Stripe's strings as they came, made storable: a NUL (PostgreSQL refuses it in text) dropped and
        # each cut to its column, so no signed event can fail the webhook on a value we only keep.
        values = {
            "payment_intent_id": _storable(state.payment_intent_id, 255),
            "status": _storable(state.status, 32) or "unknown",
            "status_at": state.status_at,
            "failure_code": _storable(state.failure_code, 64),
            "failure_message": _storable(state.failure_message, 2000),
            "updated_at": now,
        }
        stmt = pg_insert(StripeIntentRow).values(transaction_id=transaction_id, **values)
        await self._session.execute(stmt.on_conflict_do_update(index_elements=["transaction_id"], set_=values))


# Lookups by intent id of transactions whose reference is it (the payment_intent flow, and every paid one).
_by_reference = Index(
    "ix_provider_transactions_stripe_reference",
    ProviderTransactionRow.provider_reference,
    postgresql_where=text("provider = 'stripe'"),
)
