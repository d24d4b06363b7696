"""The invoice↔payment links of the Stripe projections (``stripe_invoice_payments``): recorded from
``invoice_payment`` events and invoices, and how a charge finds its invoice through them. Each write
is one statement, built once, in the webhook's transaction.

Either arrival order gives a charge its invoice: a charge stored after its link looks the link up in
its own upsert (``linked_invoice``), and a link recorded after its charges attaches them
(``attach_charges``). Of several invoices one PaymentIntent paid, a charge takes the least id (the
same in every order); a charge that names its invoice itself (API versions before 2025-03-31) keeps it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from billing_runtime.db import table_of
from billing_runtime.prepared import Executor, bound, fetch_prepared, fixed
from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    String,
    and_,
    bindparam,
    func,
    literal_column,
    not_,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert

from providers_svc.db.stripe_objects import StripeInvoicePaymentRow, StripeObjectRow
from providers_svc.domain.stripe_invoice_payments import InvoiceLink


def linked_invoice() -> ColumnElement[Any]:
    """The least invoice linked to the charge being upserted (``:stripe_id``) or to its PaymentIntent
    (``:payment_intent``), in its account (``:account_id``): a scalar subquery of the upsert."""
    links = table_of(StripeInvoicePaymentRow)
    return (
        select(func.min(links.c.invoice))
        .where(
            links.c.account_id == bindparam("account_id"),
            links.c.payment.in_([bindparam("stripe_id"), bindparam("payment_intent")]),
        )
        .scalar_subquery()
    )


@functools.cache
def locks_select() -> Any:
    """``pg_advisory_xact_lock`` of each of ``:keys`` (bigint[]), in their order."""
    keys = func.unnest(bindparam("keys", type_=ARRAY(BigInteger()))).table_valued("key", with_ordinality="n")
    keys = keys.render_derived("keys")
    # In the keys' order (ascending): PostgreSQL evaluates a volatile target list after the ORDER BY.
    return select(func.pg_advisory_xact_lock(keys.c.key).label("locked")).order_by(keys.c.n)


async def take_locks(session: Executor, keys: Sequence[int]) -> None:
    """Wait for, and hold to the end of the transaction, the advisory lock of each of ``keys``, in their
    order (``domain/stripe_locks.py``: which an event takes, and why)."""
    if keys:
        await fetch_prepared(session, locks_select(), {"keys": list(keys)})


@functools.cache
def _invoice_customers() -> Any:
    objects = table_of(StripeObjectRow)
    return select(objects.c.customer).where(
        objects.c.account_id == bindparam("account_id"),
        # By the primary key (``bound``: never through the invoices' partial index).
        objects.c.object == bound("invoice"),
        objects.c.stripe_id == func.any(bindparam("invoices", type_=ARRAY(String()))),
        objects.c.customer.is_not(None),
    )


async def invoice_customers(session: Executor, account_id: str, invoices: Sequence[str]) -> list[str]:
    """The customers of those of ``invoices`` that are stored."""
    if not invoices:
        return []
    rows = await fetch_prepared(session, _invoice_customers(), {"account_id": account_id, "invoices": list(invoices)})
    return [row["customer"] for row in rows]


@functools.cache
def _record() -> Any:
    links = table_of(StripeInvoicePaymentRow)
    rows = select(
        bindparam("account_id", type_=String()),
        func.unnest(bindparam("payments", type_=ARRAY(String()))),
        bindparam("invoice", type_=String()),
        func.unnest(bindparam("invoice_payments", type_=ARRAY(String()))),
        bindparam("now", type_=links.c.created_at.type),
    )
    columns = ["account_id", "payment", "invoice", "invoice_payment", "created_at"]
    return pg_insert(links).from_select(columns, rows).on_conflict_do_nothing().returning(links.c.payment)


@functools.cache
def _attach() -> Any:
    t = table_of(StripeObjectRow)
    payments = bindparam("payments", type_=ARRAY(String()))
    invoice = bindparam("invoice", type_=String())
    # Its own ``invoice`` field (older API versions) is the charge's word; a link only fills a gap, or
    # replaces a link to a greater invoice id (the least wins in every order).
    linked_only = t.c.data.op("->>")("invoice").is_(None)
    return (
        t.update()
        .where(
            t.c.account_id == bindparam("account_id"),
            t.c.object == fixed("charge"),
            or_(t.c.payment_intent == func.any(payments), t.c.stripe_id == func.any(payments)),
            not_(t.c.deleted),
            or_(t.c.invoice.is_(None), and_(linked_only, t.c.invoice > invoice)),
        )
        .values(invoice=invoice)
        .returning(t.c.stripe_id, literal_column("1").label("attached"))
    )


async def record_links(session: Executor, account_id: str, links: Sequence[InvoiceLink], now: datetime) -> bool:
    """Record ``links`` (all of one invoice) and give the charges they name that invoice; whether any
    charge was given it (its subscription metadata then needs mirroring)."""
    if not links:
        return False
    invoice = links[0].invoice
    assert all(link.invoice == invoice for link in links), "links of one invoice at a time"
    params: dict[str, Any] = {
        "account_id": account_id,
        "invoice": invoice,
        "payments": [link.payment for link in links],
        "invoice_payments": [link.invoice_payment for link in links],
        "now": now,
    }
    await fetch_prepared(session, _record(), params)
    # Run even when every link was known already: it changes nothing then (an indexed look-up), and a
    # charge that missed its link before the payment locks (``take_locks``) existed is given its
    # invoice at the next event that carries the link.
    attached = await fetch_prepared(session, _attach(), {k: params[k] for k in ("account_id", "invoice", "payments")})
    return bool(attached)
