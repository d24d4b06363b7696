"""Helpers of the refund tests: ``refund.created`` as payments-svc publishes it, the refunds and the
``provider.refund.updated`` events as providers-svc stored them, and a transaction marked paid."""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from billing_contracts import routing_key
from billing_contracts.events import PaymentSnapshot, RefundCreatedV1, RefundData, RefundSnapshot
from billing_runtime.bus import Message
from providers_svc.db.models import ProviderTransactionRow, outbox
from providers_svc.db.refunds import ProviderRefundRow
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

TENANT = "ten_aaaaaaaaaaaaaaaa"


def refund_created(
    payment_id: str,
    *,
    provider: str,
    amount: int,
    currency: str,
    payment_amount: int | None = None,
    reason: str | None = None,
    refund_id: str | None = None,
    tenant_id: str = TENANT,
    provider_refund_id: str | None = None,
) -> RefundCreatedV1:
    now = datetime.now(UTC)
    return RefundCreatedV1(
        tenant_id=tenant_id,
        data=RefundData(
            refund=RefundSnapshot(
                id=refund_id or f"rfnd_{secrets.token_hex(8)}",
                payment_id=payment_id,
                amount=amount,
                currency=currency,
                status="PENDING",
                reason=reason,
                provider=provider,
                provider_refund_id=provider_refund_id,
                created_at=now,
                updated_at=now,
            ),
            payment=PaymentSnapshot(
                id=payment_id,
                status="SUCCEEDED",
                amount=payment_amount or amount,
                currency=currency,
                order_id="order-1",
                provider=provider,
                created_at=now,
                updated_at=now,
                expires_at=now,
            ),
        ),
    )


def as_message(event: RefundCreatedV1) -> Message:
    return Message(
        routing_key=routing_key(event.source, event.event_type, 1),
        body=event.model_dump_json().encode(),
        message_id=event.event_id,
    )


async def mark_paid(engine: AsyncEngine, txn_id: str, reference: str | None = None) -> None:
    values: dict[str, Any] = {"status": "succeeded", "updated_at": datetime.now(UTC)}
    if reference is not None:
        values["provider_reference"] = reference
    async with engine.begin() as conn:
        await conn.execute(update(ProviderTransactionRow).where(ProviderTransactionRow.id == txn_id).values(**values))


@pytest.fixture
def refunds_of(engine: AsyncEngine) -> Callable[[], Awaitable[list[dict[str, Any]]]]:
    async def read() -> list[dict[str, Any]]:
        async with engine.connect() as conn:
            rows = await conn.execute(select(ProviderRefundRow.__table__).order_by(ProviderRefundRow.created_at))
            return [dict(r) for r in rows.mappings().all()]

    return read


@pytest.fixture
def refund_events(engine: AsyncEngine) -> Callable[[], Awaitable[list[dict[str, Any]]]]:
    """The ``provider.refund.updated`` events in the outbox (the api role relays nothing): their bodies."""

    async def read() -> list[dict[str, Any]]:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(outbox.c.body)
                .where(outbox.c.routing_key == "providers.provider.refund.updated.v1")
                .order_by(outbox.c.id)
            )
            return [json.loads(body) for body in rows.scalars()]

    return read
