"""The Stripe projections' writes: the guarded upsert of one object's state, and the mirroring of a
subscription's metadata onto its invoices and their charges. Each is one statement, built once and run
as driver SQL compiled once (``billing_runtime.writes``), in the webhook's transaction.

Concurrent deliveries of one object cannot race: the upsert decides "is mine newer" inside its own
INSERT ... ON CONFLICT DO UPDATE ... WHERE, with the row locked, against whatever was committed first.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from billing_runtime.db import table_of
from billing_runtime.prepared import Executor, bound, fetch_prepared, fixed, returning_prepared
from sqlalchemy import (
    ARRAY,
    Boolean,
    ColumnElement,
    FromClause,
    Insert,
    String,
    Table,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    not_,
    null,
    or_,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert

from providers_svc.db.stripe_links import linked_invoice
from providers_svc.db.stripe_objects import StripeObjectRow
from providers_svc.domain.stripe_events import StoredChange
from providers_svc.domain.stripe_objects import KINDS, ObjectState, sole_tenant


def _table() -> Table:
    return table_of(StripeObjectRow)


def tenant_expression(
    metadata: ColumnElement[Any],
    subscription_metadata: ColumnElement[Any],
    tenant_ids: ColumnElement[Any] | None = None,
) -> ColumnElement[str | None]:
    """The attribution rule (domain/stripe_objects.py) in SQL, where the mirrored subscription metadata
    is known: the object's ``metadata.tenant_id`` if it is one of the account's tenants
    (``:tenant_ids``, or the array ``tenant_ids`` when given), else the subscription metadata's under
    the same condition, else the account's only tenant (``:sole_tenant``, or the array's only one)."""
    sole: ColumnElement[Any]
    if tenant_ids is None:
        tenant_ids, sole = bindparam("tenant_ids", type_=ARRAY(String())), bindparam("sole_tenant", type_=String())
    else:
        sole = case((func.cardinality(tenant_ids) == 1, tenant_ids[1]), else_=null())
    own = metadata.op("->>")("tenant_id")
    mirrored = subscription_metadata.op("->>")("tenant_id")
    return case(
        (own == func.any(tenant_ids), own),
        (mirrored == func.any(tenant_ids), mirrored),
        else_=sole,
    )


def _json(name: str) -> ColumnElement[Any]:
    # none_as_null: a Python None is SQL NULL (JSONB's default writes JSON ``null``).
    return cast(bindparam(name, type_=JSONB(none_as_null=True)), JSONB(none_as_null=True))


def _stored(column: str, kind: str, stripe_id: ColumnElement[Any], account: str) -> ColumnElement[Any]:
    """``column`` of the projected ``kind`` object ``stripe_id`` of the account (the parameter named
    ``account``), as a scalar subquery: what a row mirrors from another. Looked up by the whole primary
    key, the kind bound (``bound``): never through a partial index of that kind."""
    other = _table().alias("other")
    return (
        select(other.c[column])
        .where(other.c.account_id == bindparam(account), other.c.object == bound(kind), other.c.stripe_id == stripe_id)
        .scalar_subquery()
    )


@dataclass(frozen=True)
class UpsertShape:
    """What decides an upsert's statement: the kind, and whether the state names what it mirrors from
    (an invoice its subscription, a charge its invoice). One statement per shape, with only its own
    mirroring in it: with these decided in SQL by parameters, PostgreSQL planned the statement afresh
    at every execution (a plan that drops the branches the values rule out looked cheaper than a
    generic one), which cost it more than executing the statement."""

    kind: str
    names_source: bool = False

    @staticmethod
    def of(state: ObjectState) -> UpsertShape:
        source = state.subscription if state.kind == "invoice" else state.invoice if state.kind == "charge" else None
        return UpsertShape(state.kind, source is not None)


@functools.cache
def _upsert(shape: UpsertShape) -> Insert:
    return upsert_statement(shape)


def upsert_statement(
    shape: UpsertShape, tenant_ids: ColumnElement[Any] | None = None, source: FromClause | None = None
) -> Insert:
    """The guarded upsert of one object's state of ``shape`` (``upsert_params``), its row returned when
    written. ``tenant_ids``: the account's tenants as an array expression instead of ``:tenant_ids`` and
    ``:sole_tenant``; ``source``: a row source the state is inserted once per row of (the webhook's
    inbox claim, so that a duplicate event upserts nothing)."""
    kind = shape.kind
    if kind not in KINDS:
        raise ValueError(f"not a projected kind: {kind!r}")
    t = _table()
    # A charge's invoice: its own field (API versions before 2025-03-31), else the one an
    # invoice_payment linked its PaymentIntent (or itself) to; of several, the least id, so that every
    # arrival order gives the same.
    invoice: ColumnElement[Any] = bindparam("invoice", type_=String())
    if kind == "charge" and not shape.names_source:
        invoice = linked_invoice()
    # What an invoice mirrors: its subscription's projected metadata, else its own copy of it; what a
    # charge mirrors: its invoice's mirrored metadata.
    mirrored: ColumnElement[Any] = cast(null(), JSONB(none_as_null=True))
    if kind == "invoice" and shape.names_source:
        of_subscription = _stored("object_metadata", "subscription", bindparam("subscription"), "account_id")
        mirrored = func.coalesce(of_subscription, _json("own_subscription_metadata"))
    elif kind == "invoice":
        mirrored = _json("own_subscription_metadata")
    elif kind == "charge":
        mirrored = _stored("subscription_metadata", "invoice", invoice, "account_id")
    values: dict[str, ColumnElement[Any]] = {
        "account_id": bindparam("account_id", type_=String()),
        # A kind of ours (KINDS), written into the statement.
        "object": fixed(kind),
        "stripe_id": bindparam("stripe_id", type_=String()),
        "stripe_account": bindparam("stripe_account", type_=String()),
        "livemode": bindparam("livemode", type_=Boolean()),
        "deleted": bindparam("deleted", type_=Boolean()),
        "created": bindparam("created", type_=t.c.created.type),
        "customer": bindparam("customer", type_=String()),
        "status": bindparam("status", type_=String()),
        "amount": bindparam("amount", type_=t.c.amount.type),
        "currency": bindparam("currency", type_=String()),
        "object_metadata": _json("object_metadata"),
        "subscription": bindparam("subscription", type_=String()),
        "invoice": invoice,
        "payment_intent": bindparam("payment_intent", type_=String()),
        "own_subscription_metadata": _json("own_subscription_metadata"),
        "data": _json("data"),
        "version_time": bindparam("version_time", type_=t.c.version_time.type),
        "version_rank": bindparam("version_rank", type_=t.c.version_rank.type),
        "version_progress": bindparam("version_progress", type_=t.c.version_progress.type),
        "event_id": bindparam("event_id", type_=String()),
        "event_type": bindparam("event_type", type_=String()),
        "updated_at": bindparam("updated_at", type_=t.c.updated_at.type),
    }
    values["subscription_metadata"] = mirrored
    values["tenant_id"] = tenant_expression(_json("object_metadata"), mirrored, tenant_ids)
    values["sequence"] = literal_column("1")
    state = select(*(v.label(k) for k, v in values.items()))
    insert = pg_insert(t).from_select(list(values), state if source is None else state.select_from(source))
    new = insert.excluded
    # A deletion Stripe sends as a stub (``{"id", "object", "deleted": true}``) marks the stored
    # object deleted and keeps what was known of it.
    stub = bindparam("stub", type_=Boolean())

    def kept(column: str) -> ColumnElement[Any]:
        return case((stub, func.coalesce(new[column], t.c[column])), else_=new[column])

    replaced = ("stripe_account", "livemode", "deleted", "version_time", "version_rank", "version_progress")
    updates: dict[str, Any] = {c: new[c] for c in (*replaced, "event_id", "event_type", "updated_at")}
    for column in ("customer", "status", "amount", "currency", "subscription", "invoice", "payment_intent"):
        updates[column] = kept(column)
    # An attributed object stays its tenant's: a later state (a stub with no metadata, or one read after
    # the account was reassigned to another tenant, whose sole-tenant fallback would name that one)
    # never hands it to another tenant. Only an object nobody could be told of gains a tenant.
    updates["tenant_id"] = func.coalesce(t.c.tenant_id, new.tenant_id)
    for column in ("subscription_metadata", "own_subscription_metadata"):
        updates[column] = kept(column)
    updates["object_metadata"] = case((stub, t.c.object_metadata), else_=new.object_metadata)
    updates["data"] = case((stub, t.c.data.op("||")(new.data)), else_=new.data)
    updates["sequence"] = t.c.sequence + 1
    stored_version = tuple_(t.c.version_time, t.c.version_rank, t.c.version_progress, t.c.event_id)
    new_version = tuple_(new.version_time, new.version_rank, new.version_progress, new.event_id)
    # A deletion is final: it beats every stored state, and nothing replaces it.
    newer = and_(not_(t.c.deleted), or_(new.deleted, stored_version < new_version))
    return insert.on_conflict_do_update(
        index_elements=[t.c.account_id, t.c.object, t.c.stripe_id], set_=updates, where=newer
    ).returning(*t.c, (literal_column("xmax") == literal_column("0")).label("inserted"))


def upsert_params(state: ObjectState, tenant_ids: tuple[str, ...], now: datetime) -> dict[str, Any]:
    # A deletion sent as Stripe's stub (``{"id", "object", "deleted": true}``), merged into what is known.
    stub = state.deleted and state.stripe_object.get("deleted") is True
    return {
        "account_id": state.account_id,
        "object": state.kind,
        "stripe_id": state.stripe_id,
        "stripe_account": state.stripe_account,
        "livemode": state.livemode,
        "deleted": state.deleted,
        "created": state.created,
        "customer": state.customer,
        "status": state.status,
        "amount": state.amount,
        "currency": state.currency,
        "object_metadata": state.metadata,
        "subscription": state.subscription,
        "invoice": state.invoice,
        "payment_intent": state.payment_intent,
        "own_subscription_metadata": state.own_subscription_metadata,
        "data": state.stripe_object,
        "version_time": state.version.time,
        "version_rank": state.version.rank,
        "version_progress": state.version.progress,
        "event_id": state.version.event_id,
        "event_type": state.event_type,
        "updated_at": now,
        "tenant_ids": list(tenant_ids),
        "sole_tenant": sole_tenant(tenant_ids),
        "stub": stub,
    }


async def upsert(
    session: Executor, state: ObjectState, tenant_ids: tuple[str, ...], now: datetime
) -> StoredChange | None:
    """Store ``state`` unless the stored one is newer (or deleted); the row as stored when it was
    written, None when it was not."""
    rows = await returning_prepared(session, _upsert(UpsertShape.of(state)), upsert_params(state, tenant_ids, now))
    if not rows:
        return None
    values = rows[0]
    inserted = bool(values.pop("inserted"))
    return StoredChange(values, inserted)


def _mirror_update(kind: str, which: ColumnElement[bool], metadata: ColumnElement[Any] | None = None) -> Any:
    """UPDATE the rows of ``kind`` chosen by ``which`` to carry ``metadata`` (default ``:p_metadata``)
    as their subscription metadata (and the tenant it attributes), when they do not already."""
    t = _table()
    if metadata is None:
        metadata = _json("p_metadata")
    return (
        t.update()
        .where(
            t.c.account_id == bindparam("p_account"),
            t.c.object == fixed(kind),
            which,
            # A deleted object is final: nothing changes it any more.
            not_(t.c.deleted),
            # Nothing to mirror (an invoice not projected yet, or of no subscription) blanks nothing.
            metadata.is_not(None),
            t.c.subscription_metadata.is_distinct_from(metadata),
        )
        .values(
            subscription_metadata=metadata,
            tenant_id=func.coalesce(t.c.tenant_id, tenant_expression(t.c.object_metadata, metadata)),
            sequence=t.c.sequence + 1,
            updated_at=bindparam("p_now"),
        )
        .returning(*t.c)
    )


@functools.cache
def _mirror_subscription() -> Any:
    t = _table()
    other = _table().alias("other")
    invoices_of = select(other.c.stripe_id).where(
        other.c.account_id == bindparam("p_account"),
        other.c.object == fixed("invoice"),
        other.c.subscription == bindparam("p_subscription"),
    )
    invoices = _mirror_update("invoice", t.c.subscription == bindparam("p_subscription")).cte("invoices")
    charges = _mirror_update("charge", t.c.invoice.in_(invoices_of)).cte("charges")
    return union_all(select(invoices), select(charges))


@functools.cache
def _mirror_invoice() -> Any:
    t = _table()
    return _mirror_update("charge", t.c.invoice == bindparam("p_invoice"))


async def mirror_subscription(
    session: Executor, change: StoredChange, tenant_ids: tuple[str, ...], now: datetime
) -> list[dict[str, Any]]:
    """Copy a stored subscription's metadata onto its invoices and their charges (the ones that
    arrived before it, or that carry an older copy); the rows changed."""
    row = change.row
    params = {
        "p_account": row["account_id"],
        "p_subscription": row["stripe_id"],
        "p_metadata": row["object_metadata"],
        "tenant_ids": list(tenant_ids),
        "sole_tenant": sole_tenant(tenant_ids),
        "p_now": now,
    }
    return await fetch_prepared(session, _mirror_subscription(), params)


async def mirror_invoice(
    session: Executor, change: StoredChange, tenant_ids: tuple[str, ...], now: datetime
) -> list[dict[str, Any]]:
    """Copy a stored invoice's mirrored subscription metadata onto its charges; the rows changed."""
    row = change.row
    if row["subscription_metadata"] is None:
        return []
    params = {
        "p_account": row["account_id"],
        "p_invoice": row["stripe_id"],
        "p_metadata": row["subscription_metadata"],
        "tenant_ids": list(tenant_ids),
        "sole_tenant": sole_tenant(tenant_ids),
        "p_now": now,
    }
    return await returning_prepared(session, _mirror_invoice(), params)


@functools.cache
def _mirror_invoice_by_id() -> Any:
    t = _table()
    metadata = _stored("subscription_metadata", "invoice", bindparam("p_invoice"), "p_account")
    return _mirror_update("charge", t.c.invoice == bindparam("p_invoice"), metadata)


async def mirror_invoice_by_id(
    session: Executor, account_id: str, invoice: str, tenant_ids: tuple[str, ...], now: datetime
) -> list[dict[str, Any]]:
    """Copy the projected invoice's mirrored subscription metadata onto its charges (the ones just
    linked to it by an invoice_payment); the rows changed. Nothing when the invoice is not projected
    yet: its arrival mirrors then."""
    params = {
        "p_account": account_id,
        "p_invoice": invoice,
        "tenant_ids": list(tenant_ids),
        "sole_tenant": sole_tenant(tenant_ids),
        "p_now": now,
    }
    return await returning_prepared(session, _mirror_invoice_by_id(), params)
