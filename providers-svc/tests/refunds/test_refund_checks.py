"""``POST /internal/refunds/check``: payments-svc's preflight, per provider (services/refund_checks.py).
Read-only: every answer leaves the database as it was."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from billing_runtime.ids import new_id
from providers_svc.db.models import ProviderTransactionRow
from sqlalchemy.ext.asyncio import AsyncEngine

from .conftest import TENANT

pytestmark = pytest.mark.postgres

Headers = Callable[..., dict[str, str]]


async def insert_transaction(
    engine: AsyncEngine,
    provider: str,
    *,
    status: str = "succeeded",
    amount: int = 500_000,
    currency: str = "UZS",
    paid_at: datetime | None = None,
    tenant_id: str = TENANT,
) -> str:
    now = paid_at or datetime.now(UTC)
    payment_id = new_id("pay")
    async with engine.begin() as conn:
        await conn.execute(
            ProviderTransactionRow.__table__.insert().values(
                id=new_id("ptx"),
                tenant_id=tenant_id,
                payment_id=payment_id,
                provider=provider,
                amount=amount,
                currency=currency,
                status=status,
                expires_at=now + timedelta(minutes=30),
                created_at=now,
                updated_at=now,
            )
        )
    return payment_id


def check_body(payment_id: str, provider: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "payment_id": payment_id,
        "provider": provider,
        "amount": 500_000,
        "payment_amount": 500_000,
        "currency": "UZS",
        "amount_refunded": 0,
        "paid_at": datetime.now(UTC).isoformat(),
    }
    body.update(fields)
    return body


class TestRefundCheck:
    async def _check(self, make_client: Any, internal_headers: Headers, body: dict[str, Any], **kw: Any) -> Any:
        client = await make_client()
        return await client.post("/internal/refunds/check", json=body, headers=internal_headers(**kw))

    async def test_sandbox_and_stripe_are_refundable(
        self, make_client: Any, engine: AsyncEngine, internal_headers: Headers
    ) -> None:
        for provider in ("sandbox", "stripe"):
            payment_id = await insert_transaction(engine, provider, currency="USD", amount=5000)
            response = await self._check(
                make_client, internal_headers, check_body(payment_id, provider, currency="USD", amount=100)
            )
            assert response.status == 200, await response.text()
            assert await response.json() == {"refundable": True}

    async def test_payme_is_refund_not_supported(
        self, make_client: Any, engine: AsyncEngine, internal_headers: Headers
    ) -> None:
        payment_id = await insert_transaction(engine, "payme")
        response = await self._check(make_client, internal_headers, check_body(payment_id, "payme"))
        assert response.status == 409
        problem = await response.json()
        assert problem["code"] == "refund_not_supported"
        assert "cancel" in problem["detail"]

    async def test_click_full_refund_this_month_is_refundable(
        self, make_client: Any, engine: AsyncEngine, internal_headers: Headers
    ) -> None:
        payment_id = await insert_transaction(engine, "click")
        response = await self._check(make_client, internal_headers, check_body(payment_id, "click"))
        assert response.status == 200, await response.text()

    async def test_click_partial_refund_is_422(
        self, make_client: Any, engine: AsyncEngine, internal_headers: Headers
    ) -> None:
        payment_id = await insert_transaction(engine, "click")
        response = await self._check(make_client, internal_headers, check_body(payment_id, "click", amount=100_000))
        assert response.status == 422
        assert (await response.json())["code"] == "partial_refund_not_supported"

    async def test_click_payment_of_an_earlier_month_is_window_closed(
        self, make_client: Any, engine: AsyncEngine, internal_headers: Headers
    ) -> None:
        long_ago = datetime.now(UTC) - timedelta(days=70)
        payment_id = await insert_transaction(engine, "click", paid_at=long_ago)
        response = await self._check(
            make_client, internal_headers, check_body(payment_id, "click", paid_at=long_ago.isoformat())
        )
        assert response.status == 409
        assert (await response.json())["code"] == "refund_window_closed"

    async def test_octo_limits(self, make_client: Any, engine: AsyncEngine, internal_headers: Headers) -> None:
        usd = await insert_transaction(engine, "octo", currency="USD", amount=5000)
        small = await self._check(make_client, internal_headers, check_body(usd, "octo", currency="USD", amount=99))
        assert small.status == 422
        assert (await small.json())["code"] == "refund_amount_out_of_range"
        ok = await self._check(make_client, internal_headers, check_body(usd, "octo", currency="USD", amount=100))
        assert ok.status == 200
        uzs = await insert_transaction(engine, "octo", amount=2_000_000_000)
        big = await self._check(
            make_client, internal_headers, check_body(uzs, "octo", amount=1_000_000_001, payment_amount=2_000_000_000)
        )
        assert big.status == 422

    async def test_unknown_or_unpaid_transaction(
        self, make_client: Any, engine: AsyncEngine, internal_headers: Headers
    ) -> None:
        unknown = await self._check(make_client, internal_headers, check_body("pay_nope", "sandbox"))
        assert unknown.status == 404
        assert (await unknown.json())["code"] == "transaction_not_found"
        pending = await insert_transaction(engine, "sandbox", status="pending")
        response = await self._check(make_client, internal_headers, check_body(pending, "sandbox"))
        assert response.status == 409
        assert (await response.json())["code"] == "invalid_state"

    async def test_another_tenants_payment_is_not_found(
        self, make_client: Any, engine: AsyncEngine, internal_headers: Headers
    ) -> None:
        payment_id = await insert_transaction(engine, "sandbox", tenant_id="ten_bbbbbbbbbbbbbbbb")
        response = await self._check(make_client, internal_headers, check_body(payment_id, "sandbox"))
        assert response.status == 404

    async def test_bad_input_is_422_and_only_payments_may_ask(
        self, make_client: Any, engine: AsyncEngine, internal_headers: Headers
    ) -> None:
        payment_id = await insert_transaction(engine, "sandbox")
        bad = await self._check(make_client, internal_headers, check_body(payment_id, "sandbox", amount="5"))
        assert bad.status == 422
        assert bad.content_type == "application/problem+json"
        forbidden = await self._check(
            make_client, internal_headers, check_body(payment_id, "sandbox"), issuer="gateway"
        )
        assert forbidden.status == 403
