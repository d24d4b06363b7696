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
from billing_runtime.prepared import fetch_prepared
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
from sqlalchemy.ext.asyncio import AsyncSession

from providers_svc.db.stripe_objects import StripeInvoicePaymentRow, StripeObjectRow
from providers_svc.domain.stripe_invoice_payments import InvoiceLink, payment_lock_keys


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
def _lock() -> Any:
    keys = func.unnest(bindparam("keys", type_=ARRAY(BigInteger()))).table_valued("key", with_ordinality="n")
    keys = keys.render_derived("keys")
    # In the keys' order (ascending): PostgreSQL evaluates a volatile target list after the ORDER BY.
    return select(func.pg_advisory_xact_lock(keys.c.key).label("locked")).order_by(keys.c.n)


async def lock_payments(session: AsyncSession, account_id: str, payments: Sequence[str]) -> None:
    """Wait for, and hold to the end of the transaction, the lock of each of ``payments`` (PaymentIntent
    or charge ids) of ``account_id``: before a link of them is recorded, or a charge of them stored."""
    if payments:
        await fetch_prepared(session, _lock(), {"keys": payment_lock_keys(account_id, payments)})


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
            t.c.object == "charge",
            or_(t.c.payment_intent == func.any(payments), t.c.stripe_id == func.any(payments)),
            not_(t.c.deleted),
            or_(t.c.invoice.is_(None), and_(linked_only, t.c.invoice > invoice)),
        )
        .values(invoice=invoice)
        .returning(t.c.stripe_id, literal_column("1").label("attached"))
    )


async def record_links(session: AsyncSession, account_id: str, links: Sequence[InvoiceLink], now: datetime) -> bool:
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
    # charge that missed its link before the payment locks (``lock_payments``) existed is given its
    # invoice at the next event that carries the link.
    attached = await fetch_prepared(session, _attach(), {k: params[k] for k in ("account_id", "invoice", "payments")})
    return bool(attached)
