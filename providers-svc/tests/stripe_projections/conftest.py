"""Stripe objects and events in Stripe's own shapes (API objects as https://docs.stripe.com/api shows
them, trimmed to the fields a billing platform reads), the follower run as the webhook would run it
(in a unit of work that commits), and reads of the stored rows."""

from __future__ import annotations

import itertools
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from billing_runtime.db import make_sessionmaker
from providers_svc.db.models import outbox
from providers_svc.db.stripe_objects import StripeObjectRow
from providers_svc.domain.stripe_events import VerifiedStripeEvent
from providers_svc.services.stripe_projections import project_event
from providers_svc.services.uow import ProvidersUnitOfWork
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

ACCOUNT = "pac_stripe_a"
OTHER_ACCOUNT = "pac_stripe_b"
T0 = 1_764_936_000  # 2025-12-05T12:00:00Z, Stripe's unix seconds
_ids = itertools.count(1)


def event(
    obj: dict[str, Any],
    type_: str,
    *,
    created: int = T0,
    account_id: str = ACCOUNT,
    tenant_ids: tuple[str, ...] = ("ten_aaaaaaaaaaaaaaaa",),
    event_id: str | None = None,
    stripe_account: str | None = None,
    livemode: bool = False,
    previous_attributes: dict[str, Any] | None = None,
) -> VerifiedStripeEvent:
    """A verified event as the webhook hands it to its followers."""
    event_id = event_id or f"evt_1Qx{next(_ids):08d}TestEvent"
    raw: dict[str, Any] = {
        "id": event_id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": created,
        "data": {"object": obj},
        "livemode": livemode,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": type_,
    }
    if previous_attributes is not None:
        raw["data"]["previous_attributes"] = previous_attributes
    if stripe_account is not None:
        raw["account"] = stripe_account
    return VerifiedStripeEvent(
        event_id=event_id,
        type=type_,
        created=datetime.fromtimestamp(created, UTC),
        livemode=livemode,
        account_id=account_id,
        stripe_account=stripe_account,
        tenant_ids=tenant_ids,
        object=obj,
        previous_attributes=previous_attributes,
        raw=raw,
    )


def charge(
    stripe_id: str = "ch_3QxCharge0001",
    *,
    status: str = "succeeded",
    amount: int = 5000,
    captured: bool = True,
    amount_refunded: int = 0,
    customer: str | None = "cus_QxCustomer01",
    invoice: str | None = None,
    metadata: dict[str, str] | None = None,
    created: int = T0,
    currency: str = "usd",
) -> dict[str, Any]:
    return {
        "id": stripe_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount if captured and status == "succeeded" else 0,
        "amount_refunded": amount_refunded,
        "balance_transaction": "txn_3QxBalance01",
        "billing_details": {"email": "payer@example.com", "name": "A Payer"},
        "captured": captured and status == "succeeded",
        "created": created,
        "currency": currency,
        "customer": customer,
        "description": "Two books",
        "disputed": False,
        "failure_code": "card_declined" if status == "failed" else None,
        "failure_message": "Your card was declined." if status == "failed" else None,
        "invoice": invoice,
        "livemode": False,
        "metadata": metadata or {},
        "paid": status == "succeeded",
        "payment_intent": "pi_3QxIntent0001",
        "payment_method": "pm_1QxCard0001",
        "refunded": amount_refunded >= amount,
        "status": status,
    }


def refund(
    stripe_id: str = "re_3QxRefund0001",
    *,
    status: str = "succeeded",
    amount: int = 2000,
    charge_id: str = "ch_3QxCharge0001",
    metadata: dict[str, str] | None = None,
    created: int = T0,
) -> dict[str, Any]:
    return {
        "id": stripe_id,
        "object": "refund",
        "amount": amount,
        "balance_transaction": "txn_3QxBalance02",
        "charge": charge_id,
        "created": created,
        "currency": "usd",
        "metadata": metadata or {},
        "payment_intent": "pi_3QxIntent0001",
        "reason": "requested_by_customer",
        "status": status,
    }


def dispute(
    stripe_id: str = "dp_1QxDispute001",
    *,
    status: str = "needs_response",
    balance_transactions: int = 0,
    created: int = T0,
) -> dict[str, Any]:
    return {
        "id": stripe_id,
        "object": "dispute",
        "amount": 5000,
        "balance_transactions": [
            {"id": f"txn_dp{i}", "object": "balance_transaction"} for i in range(balance_transactions)
        ],
        "charge": "ch_3QxCharge0001",
        "created": created,
        "currency": "usd",
        "evidence_details": {"due_by": created + 7 * 86400, "has_evidence": False, "submission_count": 0},
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "payment_intent": "pi_3QxIntent0001",
        "reason": "fraudulent",
        "status": status,
    }


def customer(
    stripe_id: str = "cus_QxCustomer01",
    *,
    email: str = "payer@example.com",
    metadata: dict[str, str] | None = None,
    created: int = T0,
) -> dict[str, Any]:
    return {
        "id": stripe_id,
        "object": "customer",
        "balance": 0,
        "created": created,
        "currency": "usd",
        "delinquent": False,
        "description": None,
        "email": email,
        "invoice_prefix": "QX0001",
        "livemode": False,
        "metadata": metadata or {},
        "name": "A Payer",
    }


def subscription(
    stripe_id: str = "sub_1QxSubscript01",
    *,
    status: str = "active",
    customer_id: str = "cus_QxCustomer01",
    metadata: dict[str, str] | None = None,
    created: int = T0,
) -> dict[str, Any]:
    return {
        "id": stripe_id,
        "object": "subscription",
        "billing_cycle_anchor": created,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "collection_method": "charge_automatically",
        "created": created,
        "currency": "usd",
        "current_period_end": created + 30 * 86400,
        "current_period_start": created,
        "customer": customer_id,
        "items": {"object": "list", "data": [{"id": "si_QxItem01", "object": "subscription_item"}]},
        "latest_invoice": "in_1QxInvoice0001",
        "livemode": False,
        "metadata": metadata or {},
        "status": status,
    }


def invoice(
    stripe_id: str = "in_1QxInvoice0001",
    *,
    status: str = "open",
    subscription_id: str | None = "sub_1QxSubscript01",
    amount_due: int = 5000,
    amount_paid: int = 0,
    metadata: dict[str, str] | None = None,
    created: int = T0,
) -> dict[str, Any]:
    return {
        "id": stripe_id,
        "object": "invoice",
        "amount_due": amount_due,
        "amount_paid": amount_paid,
        "amount_remaining": amount_due - amount_paid,
        "attempt_count": 1 if amount_paid else 0,
        "billing_reason": "subscription_cycle",
        "charge": "ch_3QxCharge0001" if amount_paid else None,
        "collection_method": "charge_automatically",
        "created": created,
        "currency": "usd",
        "customer": "cus_QxCustomer01",
        "livemode": False,
        "metadata": metadata or {},
        "number": "QX0001-0001",
        "paid": status == "paid",
        "payment_intent": "pi_3QxIntent0001",
        "status": status,
        "status_transitions": {"finalized_at": created, "paid_at": created if status == "paid" else None},
        "subscription": subscription_id,
        "total": amount_due,
    }


def product(
    stripe_id: str = "prod_QxProduct01",
    *,
    name: str = "Pro plan",
    active: bool = True,
    created: int = T0,
    updated: int | None = None,
) -> dict[str, Any]:
    return {
        "id": stripe_id,
        "object": "product",
        "active": active,
        "created": created,
        "default_price": "price_1QxPrice01",
        "description": None,
        "livemode": False,
        "metadata": {},
        "name": name,
        "type": "service",
        "updated": updated if updated is not None else created,
    }


Project = Callable[[VerifiedStripeEvent], Awaitable[None]]
Rows = Callable[..., Awaitable[list[dict[str, Any]]]]
Published = Callable[[], Awaitable[list[tuple[str, dict[str, Any]]]]]


@pytest.fixture
def new_uow(engine: AsyncEngine) -> Callable[[], ProvidersUnitOfWork]:
    sessionmaker = make_sessionmaker(engine)
    return lambda: ProvidersUnitOfWork(sessionmaker, outbox)


@pytest.fixture
def project(new_uow: Callable[[], ProvidersUnitOfWork]) -> Project:
    """Run the follower as the webhook does: in a unit of work that then commits."""

    async def run(verified: VerifiedStripeEvent) -> None:
        async with new_uow() as uow:
            await project_event(uow, verified)
            await uow.commit()

    return run


@pytest.fixture
def stored(engine: AsyncEngine) -> Rows:
    """``await stored()``: every projected row, by (object, stripe_id, account_id)."""

    async def read(**where: Any) -> list[dict[str, Any]]:
        t = StripeObjectRow.__table__
        stmt = (
            select(t)
            .where(*(t.c[k] == v for k, v in where.items()))
            .order_by(t.c.object, t.c.stripe_id, t.c.account_id)
        )
        async with engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(stmt)).mappings()]

    return read


@pytest.fixture
def published(db_read: Callable[..., Awaitable[list[Any]]]) -> Published:
    """The outbox: (routing key, body) of each event written, in order."""

    async def read() -> list[tuple[str, dict[str, Any]]]:
        rows = sorted(await db_read("outbox"), key=lambda r: r["id"])
        return [(r["routing_key"], json.loads(r["body"])) for r in rows]

    return read
