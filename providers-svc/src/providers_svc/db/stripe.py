"""``stripe_intents``: what the Stripe webhooks last applied to each Stripe transaction, so that an event
older than that one (Stripe delivers out of order) is never taken for the intent's current state."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from billing_runtime.db import UTCDateTime, table_of
from billing_runtime.prepared import Executor, fetch_prepared, fixed, returning_prepared
from billing_runtime.writes import InsertRows, Precondition, UpdateRows
from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Index,
    ScalarSelect,
    Select,
    String,
    Text,
    bindparam,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.dml import ReturningInsert, ReturningUpdate

from providers_svc.db.models import Base, ProviderEventRow, ProviderTransactionRow, TenantProviderAccountRow
from providers_svc.db.repositories import transaction_from_row
from providers_svc.db.stripe_links import locks_select
from providers_svc.db.stripe_writes import UpsertShape, upsert_params, upsert_statement
from providers_svc.domain.stripe_events import StoredChange
from providers_svc.domain.stripe_objects import ObjectState
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


_EVENT_COLUMNS = (
    "id",
    "provider",
    "external_id",
    "event_type",
    "transaction_id",
    "payload",
    "received_at",
    "result",
    "deliveries",
)
_INTENT_STATE = ("payment_intent_id", "status", "status_at", "failure_code", "failure_message", "updated_at")


# Built once and run as driver SQL compiled once (``fetch_prepared``/``returning_prepared``) in the
# unit's transaction: the webhook runs them for every Stripe event, and the ORM's construction, cache
# key and bulk-insert machinery around a statement cost more CPU than the statement's round trip.
def _tenants() -> ScalarSelect[Any]:
    """The tenants the account ``:account_id`` is assigned to, sorted (NULL for none)."""
    assignments = table_of(TenantProviderAccountRow)
    tenant = assignments.c.tenant_id
    return (
        select(func.array_agg(aggregate_order_by(tenant, tenant)))
        .where(assignments.c.account_id == bindparam("account_id", type_=String))
        .scalar_subquery()
    )


def _event_insert() -> PgInsert:
    table = table_of(ProviderEventRow)
    return pg_insert(table).values({c: bindparam(c, type_=table.c[c].type) for c in _EVENT_COLUMNS})


@functools.cache
def _claim() -> ReturningInsert[Any]:
    # The event's first advisory locks (``domain/stripe_locks.py``), taken as its row is returned: the
    # unit's next statement, after any wait, sees what the holder committed (one round trip fewer than
    # a statement of their own). A duplicate returns no row and takes none.
    locked = select(func.count()).select_from(locks_select().subquery()).scalar_subquery()
    return _event_insert().on_conflict_do_nothing().returning(_tenants().label("tenant_ids"), locked.label("locked"))


@functools.cache
def _claim_and_upsert(shape: UpsertShape) -> Select[Any]:
    # The inbox row, and for each row it inserted (none for a duplicate) the object's upsert: one
    # statement. The two write different tables, so neither needs to see the other's effects.
    claim = _event_insert().on_conflict_do_nothing().returning(table_of(ProviderEventRow).c.id).cte("claim")
    # As an array expression (``= ANY`` of a bare subquery would compare with its rows), empty for none.
    tenants = func.coalesce(_tenants(), cast(literal("{}"), ARRAY(String())), type_=ARRAY(String()))
    upserted = upsert_statement(shape, tenants, claim).cte("upserted")
    return select(tenants.label("tenant_ids"), *upserted.c).select_from(claim).outerjoin(upserted, true())


@functools.cache
def _redelivered() -> ReturningUpdate[Any]:
    table = table_of(ProviderEventRow)
    delivery = bindparam("delivery", type_=Text)
    return (
        update(table)
        .where(
            table.c.provider == bindparam("provider", type_=String),
            table.c.external_id == bindparam("external_id", type_=String),
            # Not among the row's deliveries (array_position of NULL, a row older than the column: NULL).
            func.array_position(table.c.deliveries, delivery).is_(None),
        )
        .values(deliveries=func.array_append(table.c.deliveries, delivery))
        .returning(table.c.id)
    )


def _stripe_transactions() -> Select[Any]:
    t = table_of(ProviderTransactionRow)
    return select(*t.c).where(t.c.provider == fixed("stripe"))


@functools.cache
def _locked_by_id() -> Select[Any]:
    t = table_of(ProviderTransactionRow)
    return _stripe_transactions().where(t.c.id == bindparam("id", type_=String)).limit(1).with_for_update()


def _of_intent() -> Select[Any]:
    """Stripe transactions of the intent ``:intent``: its ``provider_reference``, or the intent the
    webhooks recorded for a session."""
    t, intents = table_of(ProviderTransactionRow), table_of(StripeIntentRow)
    intent = bindparam("intent", type_=String)
    recorded = select(intents.c.transaction_id).where(intents.c.payment_intent_id == intent).scalar_subquery()
    return _stripe_transactions().where(or_(t.c.provider_reference == intent, t.c.id.in_(recorded)))


@functools.cache
def _locked_by_intent() -> Select[Any]:
    return _of_intent().limit(1).with_for_update()


@functools.cache
def _no_transaction_of_intent() -> ColumnElement[bool]:
    return ~exists(_of_intent())


@functools.cache
def _intent_state() -> Select[Any]:
    intents = table_of(StripeIntentRow)
    return select(*(intents.c[c] for c in _INTENT_STATE)).where(
        intents.c.transaction_id == bindparam("id", type_=String)
    )


@functools.cache
def _save_intent_state() -> ReturningInsert[Any]:
    intents = table_of(StripeIntentRow)
    values = {c: bindparam(c, type_=intents.c[c].type) for c in ("transaction_id", *_INTENT_STATE)}
    insert = pg_insert(intents).values(values)
    return insert.on_conflict_do_update(
        index_elements=[intents.c.transaction_id], set_={c: insert.excluded[c] for c in _INTENT_STATE}
    ).returning(intents.c.transaction_id)


def _storable(value: str | None, length: int) -> str | None:
    return None if value is None else value.replace("\x00", "")[:length]


class StripeRepository:
    """The webhook's reads and writes, in its unit of work's transaction."""

    def __init__(self, session: Executor) -> None:
        self._session = session

    async def record_event(self, values: dict[str, Any]) -> bool:
        """The inbox row (``provider_events``), unless ``(provider, external_id)`` is there; True if new.
        A concurrent copy of the same event waits here for the first one's commit and then finds it."""
        return await self.claim_event(values, None, []) is not None

    @staticmethod
    def event_insert(values: dict[str, Any]) -> InsertRows:
        """The inbox row, as a unit's guard (``commit_unless_exists``)."""
        return InsertRows(table_of(ProviderEventRow), [values])

    @staticmethod
    def no_transaction_of(intent_id: str) -> Precondition:
        """ "No Stripe transaction of ours is the PaymentIntent's", checked in a guarded statement."""
        return Precondition(_no_transaction_of_intent(), {"intent": intent_id})

    async def claim_and_upsert(
        self, values: dict[str, Any], account_id: str, state: ObjectState, now: datetime
    ) -> tuple[tuple[str, ...], StoredChange | None] | None:
        """``claim_event`` for an event that takes no lock, with its object's ``upsert`` in the same
        statement: the tenants and what the upsert stored (None: the stored state was newer), or None
        when the event was recorded before (then nothing is upserted)."""
        if state.account_id != account_id:
            raise ValueError("an event's object is of the event's account")
        params = upsert_params(state, (), now)
        # The statement binds a name once: the claim's and the upsert's values of it must be the same.
        if any(params[k] != values[k] for k in params.keys() & values.keys()):
            raise ValueError("the inbox row and the object's state disagree on a shared parameter")
        rows = await fetch_prepared(
            self._session, _claim_and_upsert(UpsertShape.of(state)), {**params, **values, "account_id": account_id}
        )
        if not rows:
            return None
        row = rows[0]
        tenant_ids = tuple(row.pop("tenant_ids") or ())
        if row["stripe_id"] is None:
            return tenant_ids, None
        inserted = bool(row.pop("inserted"))
        return tenant_ids, StoredChange(row, inserted)

    async def redelivered(self, external_id: str, delivery: str) -> bool:
        """An event recorded before, delivered again: ``delivery`` (``"<t>:<account id>"``) added to its
        inbox row's deliveries and True, or False with nothing written when the row holds it already
        (the same signed request again: a replay). The row stays locked until the unit ends, so of two
        copies of one request at once the second waits here and then finds the first's."""
        rows = await returning_prepared(
            self._session, _redelivered(), {"provider": "stripe", "external_id": external_id, "delivery": delivery}
        )
        return bool(rows)

    async def claim_event(
        self, values: dict[str, Any], account_id: str | None, lock_keys: list[int]
    ) -> tuple[str, ...] | None:
        """``record_event``, and in the same statement the tenants ``account_id`` is assigned to (sorted)
        and the advisory locks of ``lock_keys`` (in their order): None when the event was recorded
        before (then no lock is taken)."""
        params = {**values, "account_id": account_id, "keys": lock_keys}
        rows = await returning_prepared(self._session, _claim(), params)
        if not rows:
            return None
        return tuple(rows[0]["tenant_ids"] or ())

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
        if transaction_id is not None:
            rows = await fetch_prepared(self._session, _locked_by_id(), {"id": transaction_id})
        elif payment_intent_id is not None:
            rows = await fetch_prepared(self._session, _locked_by_intent(), {"intent": payment_intent_id})
        else:
            return None
        return transaction_from_row(rows[0]) if rows else None

    async def intent_state(self, transaction_id: str) -> IntentState | None:
        rows = await fetch_prepared(self._session, _intent_state(), {"id": transaction_id})
        if not rows:
            return None
        row = rows[0]
        return IntentState(
            row["payment_intent_id"], row["status"], row["status_at"], row["failure_code"], row["failure_message"]
        )

    async def save_intent_state(self, transaction_id: str, state: IntentState, now: datetime) -> None:
        # Stripe's strings as they came, made storable: a NUL (PostgreSQL refuses it in text) dropped and
        # each cut to its column, so no signed event can fail the webhook on a value we only keep.
        values = {
            "transaction_id": transaction_id,
            "payment_intent_id": _storable(state.payment_intent_id, 255),
            "status": _storable(state.status, 32) or "unknown",
            "status_at": state.status_at,
            "failure_code": _storable(state.failure_code, 64),
            "failure_message": _storable(state.failure_message, 2000),
            "updated_at": now,
        }
        await returning_prepared(self._session, _save_intent_state(), values)


# Lookups by intent id of transactions whose reference is it (the payment_intent flow, and every paid one).
_by_reference = Index(
    "ix_provider_transactions_stripe_reference",
    ProviderTransactionRow.provider_reference,
    postgresql_where=text("provider = 'stripe'"),
)
