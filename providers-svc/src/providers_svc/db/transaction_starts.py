"""The statements of starting a payment at a provider (``services.transactions.start_payment``): on the
path of every checkout click, so each is one self-committing statement, compiled once and sent as
driver SQL, instead of a transaction of ORM reads and writes."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from billing_runtime.db import table_of
from billing_runtime.ids import new_id
from billing_runtime.uow import UnitOfWork
from sqlalchemy import Insert, Select, Update, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from providers_svc.adapters.base import StartResult
from providers_svc.db.models import ProviderTransactionRow
from providers_svc.db.repositories import NewTransaction, transaction_from_row
from providers_svc.domain.transactions import Transaction, TransactionStatus

_NEW_COLUMNS = (
    "id",
    "tenant_id",
    "payment_id",
    "provider",
    "amount",
    "currency",
    "livemode",
    "account_id",
    "capture_method",
    "status",
    "order_id",
    "description",
    "return_url",
    "expires_at",
    "created_at",
    "updated_at",
)


@functools.cache
def _insert_new(started: bool) -> Insert:
    """The new transaction's row; ``started``: with where the payer goes (an adapter that starts locally)."""
    table = table_of(ProviderTransactionRow)
    columns = (*_NEW_COLUMNS, "redirect_url", "provider_reference") if started else _NEW_COLUMNS
    values = {c: bindparam(c, type_=table.c[c].type) for c in columns}
    # Unique on (payment_id, provider): a repeat, or a concurrent click, inserts nothing.
    return pg_insert(table).values(values).on_conflict_do_nothing().returning(*table.c)


@functools.cache
def _for_payment() -> Select[Any]:
    table = table_of(ProviderTransactionRow)
    return select(*table.c).where(
        table.c.tenant_id == bindparam("tenant_id"),
        table.c.payment_id == bindparam("payment_id"),
        table.c.provider == bindparam("provider"),
    )


@functools.cache
def _set_started() -> Update:
    table = table_of(ProviderTransactionRow)
    return (
        update(table)
        .where(
            table.c.tenant_id == bindparam("tenant_id"),
            table.c.id == bindparam("id"),
            table.c.redirect_url.is_(None),
        )
        .values(
            redirect_url=bindparam("redirect_url"),
            provider_reference=bindparam("provider_reference"),
            updated_at=bindparam("updated_at"),
        )
        .returning(*table.c)
    )


def new_transaction(new: NewTransaction, now: datetime) -> Transaction:
    """The transaction ``new`` becomes, with its id, before it is stored (for an adapter that starts
    locally: where the payer goes is then stored with it)."""
    return Transaction(
        id=new_id("ptx"),
        tenant_id=new.tenant_id,
        payment_id=new.payment_id,
        provider=new.provider,
        amount=new.amount,
        currency=new.currency,
        status=TransactionStatus.PENDING,
        order_id=new.order_id,
        description=new.description,
        return_url=new.return_url,
        redirect_url=None,
        provider_reference=None,
        failure_code=None,
        failure_message=None,
        expires_at=new.expires_at,
        created_at=now,
        updated_at=now,
        livemode=new.livemode,
        account_id=new.account_id,
        capture_method=new.capture_method,
    )


async def create_or_find(
    uow: UnitOfWork, txn: Transaction, started: StartResult | None = None
) -> tuple[Transaction | None, bool]:
    """The tenant's transaction of ``(payment_id, provider)``: ``txn`` inserted unless one exists (with
    ``started``'s redirect when given); and whether it was inserted now. None: the pair exists for
    another tenant (payment ids are global, PRV-9)."""
    values: dict[str, Any] = {c: getattr(txn, c) for c in _NEW_COLUMNS}
    values["status"] = txn.status.value
    if started is not None:
        values["redirect_url"] = started.redirect_url
        values["provider_reference"] = started.provider_reference
    inserted = await uow.write_alone(_insert_new(started is not None), values)
    if inserted:
        return transaction_from_row(inserted[0]), True
    return await find_for_payment(uow, txn.tenant_id, txn.payment_id, txn.provider), False


async def find_for_payment(uow: UnitOfWork, tenant_id: str, payment_id: str, provider: str) -> Transaction | None:
    rows = await uow.read_unlocked(
        _for_payment(), {"tenant_id": tenant_id, "payment_id": payment_id, "provider": provider}
    )
    return transaction_from_row(rows[0]) if rows else None


async def record_started(
    uow: UnitOfWork, txn: Transaction, redirect_url: str, provider_reference: str | None, now: datetime
) -> Transaction | None:
    """Store where the payer goes; the first writer wins, so every caller returns the same URL (the
    stored transaction either way)."""
    params = {
        "tenant_id": txn.tenant_id,
        "id": txn.id,
        "redirect_url": redirect_url,
        "provider_reference": provider_reference,
        "updated_at": now,
    }
    updated = await uow.write_alone(_set_started(), params)
    if updated:
        return transaction_from_row(updated[0])
    return await find_for_payment(uow, txn.tenant_id, txn.payment_id, txn.provider)
