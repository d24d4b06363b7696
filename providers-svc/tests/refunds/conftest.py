"""Helpers of the refund tests: ``refund.created`` as payments-svc publishes it, the refunds and the
``provider.refund.updated`` events as providers-svc stored them, a transaction marked paid, and the app
as its own gateway with a payment paid through Click's or Octo's simulator."""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from billing_contracts import routing_key
from billing_contracts.events import PaymentSnapshot, RefundCreatedV1, RefundData, RefundSnapshot
from billing_runtime.bus import MemoryBus, Message
from billing_runtime.testing import free_port
from providers_svc.app import create_app
from providers_svc.db.models import ProviderTransactionRow, outbox
from providers_svc.db.refunds import ProviderRefundRow
from providers_svc.settings import Settings
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


Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def own_gateway(aiohttp_client: Any, engine: AsyncEngine, bus: MemoryBus, settings: Settings) -> Client:
    port = free_port()
    app_settings = settings.model_copy(
        update={"enabled_providers": ["sandbox", "click", "octo"], "public_gateway_url": f"http://127.0.0.1:{port}"}
    )
    client: Client = await aiohttp_client(
        create_app(app_settings, engine=engine, bus=bus, roles=("api",)), server_kwargs={"port": port}
    )
    return client


async def paid_with_simulator(client: Client, headers: dict[str, str], provider: str, amount: int) -> dict[str, Any]:
    body = {
        "payment_id": f"pay_{provider}{datetime.now(UTC).timestamp():.6f}".replace(".", ""),
        "provider": provider,
        "amount": amount,
        "currency": "UZS",
        "order_id": "order-1",
        "return_url": "http://127.0.0.1:8080/c/tok_1/return",
        "expires_at": (datetime.now(UTC) + timedelta(minutes=30)).isoformat(),
    }
    started = await client.post("/internal/payments/start", json=body, headers=headers)
    assert started.status == 200, await started.text()
    payment: dict[str, Any] = await started.json()
    url = str(payment["redirect_url"])
    paid = await client.post(url[url.index("/simulators/") :], data={"outcome": "pay"}, allow_redirects=False)
    assert paid.status == 303, await paid.text()
    payment["payment_id"] = body["payment_id"]
    return payment
