"""Internal API (docs/INTERNAL.md): auth, providers list, idempotent start, cancel, tenant isolation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from billing_runtime.internal_auth import INTERNAL_HEADER

TENANT_A = "ten_aaaaaaaaaaaaaaaa"
TENANT_B = "ten_bbbbbbbbbbbbbbbb"
ROUTES = [
    ("GET", "/internal/providers"),
    ("POST", "/internal/payments/start"),
    ("POST", "/internal/payments/pay_x/cancel"),
    ("POST", "/internal/payments/pay_x/transactions/ptx_x/void"),
]


class TestInternalAuth:
    @pytest.mark.parametrize(("method", "path"), ROUTES)
    async def test_missing_token_is_401(self, make_client: Any, method: str, path: str) -> None:
        client = await make_client()
        response = await client.request(method, path, json={})
        assert response.status == 401
        assert response.content_type == "application/problem+json"
        assert (await response.json())["code"] == "unauthorized"

    @pytest.mark.parametrize(("method", "path"), ROUTES)
    async def test_forged_token_is_401(
        self, make_client: Any, internal_headers: Callable[..., dict[str, str]], method: str, path: str
    ) -> None:
        client = await make_client()
        response = await client.request(
            method, path, json={}, headers=internal_headers(secret="not-the-secret-but-long-enough-for-hs256")
        )
        assert response.status == 401

    async def test_token_for_another_service_is_401(
        self, make_client: Any, internal_headers: Callable[..., dict[str, str]]
    ) -> None:
        client = await make_client()
        response = await client.get("/internal/providers", headers=internal_headers(audience="payments"))
        assert response.status == 401

    async def test_garbage_token_is_401(self, make_client: Any) -> None:
        client = await make_client()
        response = await client.get("/internal/providers", headers={INTERNAL_HEADER: "not.a.jwt"})
        assert response.status == 401

    @pytest.mark.parametrize(("method", "path"), ROUTES)
    async def test_token_without_tenant_is_401(
        self, make_client: Any, internal_headers: Callable[..., dict[str, str]], method: str, path: str
    ) -> None:
        client = await make_client()
        response = await client.request(method, path, json={}, headers=internal_headers(tenant_id=None))
        assert response.status == 401
        assert (await response.json())["code"] == "unauthorized"

    async def test_health_needs_no_token(self, make_client: Any) -> None:
        client = await make_client()
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/readyz")).status == 200
        assert "provider_callbacks_total" in await (await client.get("/metrics")).text()


class TestListProviders:
    async def test_lists_the_sandbox(self, make_client: Any, internal_headers: Callable[..., dict[str, str]]) -> None:
        client = await make_client()
        response = await client.get("/internal/providers", headers=internal_headers())
        assert response.status == 200
        assert await response.json() == {
            "data": [
                {
                    "name": "sandbox",
                    "display_name": "Sandbox (test)",
                    "simulator": False,
                    "livemode": False,
                    "capture_methods": ["automatic", "manual"],
                }
            ]
        }

    async def test_filters_by_currency(self, make_client: Any, internal_headers: Callable[..., dict[str, str]]) -> None:
        client = await make_client()
        usd = await client.get("/internal/providers?currency=UZS", headers=internal_headers())
        assert [p["name"] for p in (await usd.json())["data"]] == ["sandbox"]
        gbp = await client.get("/internal/providers?currency=GBP", headers=internal_headers())
        assert (await gbp.json())["data"] == []

    async def test_malformed_currency_is_422(
        self, make_client: Any, internal_headers: Callable[..., dict[str, str]]
    ) -> None:
        client = await make_client()
        response = await client.get("/internal/providers?currency=usd", headers=internal_headers())
        assert response.status == 422
        assert (await response.json())["errors"][0]["field"] == "currency"

    async def test_disabled_sandbox_is_not_listed(
        self, make_client: Any, internal_headers: Callable[..., dict[str, str]]
    ) -> None:
        client = await make_client(enabled_providers=[])
        response = await client.get("/internal/providers", headers=internal_headers())
        assert (await response.json())["data"] == []


class TestStartPayment:
    async def test_returns_the_payer_page(
        self, make_client: Any, start_payment: Callable[..., Awaitable[dict[str, Any]]], db_read: Any
    ) -> None:
        client = await make_client(public_gateway_url="http://127.0.0.1:18000")
        started = await start_payment(client)
        ptx = started["provider_transaction_id"]
        assert ptx.startswith("ptx_")
        assert started["redirect_url"] == f"http://127.0.0.1:18000/sandbox/pay/{ptx}"
        assert started["provider_reference"] is None
        assert started["status"] == "pending"
        [row] = await db_read("transactions")
        assert (row["id"], row["tenant_id"], row["payment_id"]) == (ptx, TENANT_A, started["payment_id"])
        assert (row["amount"], row["currency"], row["status"]) == (5000, "USD", "pending")
        assert row["return_url"] == "http://127.0.0.1:8080/c/tok_1/return"

    async def test_repeat_returns_the_same_transaction(
        self,
        make_client: Any,
        internal_headers: Callable[..., dict[str, str]],
        payment_request: Callable[..., dict[str, Any]],
        db_read: Any,
    ) -> None:
        client = await make_client()
        body = payment_request()
        first = await client.post("/internal/payments/start", json=body, headers=internal_headers())
        second = await client.post("/internal/payments/start", json=body, headers=internal_headers())
        assert first.status == second.status == 200
        assert await first.json() == await second.json()
        assert len(await db_read("transactions")) == 1

    async def test_concurrent_starts_create_one_transaction(
        self,
        make_client: Any,
        internal_headers: Callable[..., dict[str, str]],
        payment_request: Callable[..., dict[str, Any]],
        db_read: Any,
    ) -> None:
        client = await make_client()
        body = payment_request()
        responses = await asyncio.gather(
            *(client.post("/internal/payments/start", json=body, headers=internal_headers()) for _ in range(10))
        )
        assert {r.status for r in responses} == {200}
        assert len({(await r.json())["provider_transaction_id"] for r in responses}) == 1
        assert len(await db_read("transactions")) == 1

    async def test_without_expiry_gets_the_default_ttl(
        self, make_client: Any, start_payment: Callable[..., Awaitable[dict[str, Any]]], db_read: Any
    ) -> None:
        client = await make_client()
        await start_payment(client, expires_at=None)
        [row] = await db_read("transactions")
        assert 1790 <= (row["expires_at"] - row["created_at"]).total_seconds() <= 1810

    async def test_same_payment_with_another_amount_is_409(
        self,
        make_client: Any,
        internal_headers: Callable[..., dict[str, str]],
        payment_request: Callable[..., dict[str, Any]],
    ) -> None:
        client = await make_client()
        body = payment_request()
        assert (await client.post("/internal/payments/start", json=body, headers=internal_headers())).status == 200
        changed = {**body, "amount": 1}
        response = await client.post("/internal/payments/start", json=changed, headers=internal_headers())
        assert response.status == 409
        assert (await response.json())["code"] == "payment_conflict"

    async def test_unknown_provider_is_422(
        self,
        make_client: Any,
        internal_headers: Callable[..., dict[str, str]],
        payment_request: Callable[..., dict[str, Any]],
        db_read: Any,
    ) -> None:
        client = await make_client()
        response = await client.post(
            "/internal/payments/start", json=payment_request(provider="click"), headers=internal_headers()
        )
        assert response.status == 422
        assert (await response.json())["code"] == "unknown_provider"
        assert await db_read("transactions") == []

    async def test_unsupported_currency_is_422(
        self,
        make_client: Any,
        internal_headers: Callable[..., dict[str, str]],
        payment_request: Callable[..., dict[str, Any]],
    ) -> None:
        client = await make_client()
        response = await client.post(
            "/internal/payments/start", json=payment_request(currency="GBP"), headers=internal_headers()
        )
        assert response.status == 422
        assert (await response.json())["code"] == "currency_not_supported"

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("amount", "5000"),
            ("amount", 50.5),
            ("amount", 0),
            ("amount", -1),
            ("amount", True),
            ("currency", "usd"),
            ("payment_id", ""),
            ("return_url", "javascript:alert(1)"),
            ("expires_at", "2026-11-22T10:00:00"),
        ],
    )
    async def test_invalid_field_is_422(
        self,
        make_client: Any,
        internal_headers: Callable[..., dict[str, str]],
        payment_request: Callable[..., dict[str, Any]],
        field: str,
        value: object,
    ) -> None:
        client = await make_client()
        response = await client.post(
            "/internal/payments/start", json=payment_request(**{field: value}), headers=internal_headers()
        )
        assert response.status == 422
        body = await response.json()
        assert body["code"] == "validation_error"
        assert body["errors"][0]["field"] == field

    async def test_body_not_json_is_400(
        self, make_client: Any, internal_headers: Callable[..., dict[str, str]]
    ) -> None:
        client = await make_client()
        headers = {**internal_headers(), "Content-Type": "application/json"}
        response = await client.post("/internal/payments/start", data=b"{not json", headers=headers)
        assert response.status == 400
        listed = await client.post("/internal/payments/start", data=b"[1]", headers=headers)
        assert listed.status == 400

    async def test_wrong_content_type_is_415(
        self, make_client: Any, internal_headers: Callable[..., dict[str, str]]
    ) -> None:
        client = await make_client()
        response = await client.post("/internal/payments/start", data=b"a=b", headers=internal_headers())
        assert response.status == 415


class TestTenantIsolation:
    async def test_another_tenant_cannot_start_the_same_payment(
        self,
        make_client: Any,
        internal_headers: Callable[..., dict[str, str]],
        payment_request: Callable[..., dict[str, Any]],
        db_read: Any,
    ) -> None:
        client = await make_client()
        body = payment_request()
        own = await client.post("/internal/payments/start", json=body, headers=internal_headers(TENANT_A))
        other = await client.post("/internal/payments/start", json=body, headers=internal_headers(TENANT_B))
        assert own.status == 200
        assert other.status == 409
        assert (await own.json())["redirect_url"] not in await other.text()
        [row] = await db_read("transactions")
        assert row["tenant_id"] == TENANT_A

    async def test_another_tenant_cannot_cancel(
        self,
        make_client: Any,
        internal_headers: Callable[..., dict[str, str]],
        start_payment: Callable[..., Awaitable[dict[str, Any]]],
        db_read: Any,
    ) -> None:
        client = await make_client()
        started = await start_payment(client, TENANT_A)
        response = await client.post(
            f"/internal/payments/{started['payment_id']}/cancel", headers=internal_headers(TENANT_B)
        )
        # Tenant B has no transaction for that id: nothing to cancel, and A's transaction is untouched.
        assert response.status == 200
        [row] = await db_read("transactions")
        assert row["status"] == "pending"
        assert await db_read("charges") == []
        page = await client.get(f"/sandbox/pay/{started['provider_transaction_id']}")
        assert "Pay (succeed)" in await page.text()


class TestCancelPayment:
    async def test_without_transaction_is_cancelled(
        self, make_client: Any, internal_headers: Callable[..., dict[str, str]]
    ) -> None:
        client = await make_client()
        response = await client.post("/internal/payments/pay_nothing/cancel", headers=internal_headers())
        assert response.status == 200
        assert await response.json() == {"cancelled": True}

    async def test_pending_transaction_is_cancelled_at_the_bank_and_here(
        self,
        make_client: Any,
        internal_headers: Callable[..., dict[str, str]],
        start_payment: Callable[..., Awaitable[dict[str, Any]]],
        db_read: Any,
    ) -> None:
        client = await make_client()
        started = await start_payment(client)
        cancel_path = f"/internal/payments/{started['payment_id']}/cancel"
        response = await client.post(cancel_path, headers=internal_headers())
        assert response.status == 200
        assert await response.json() == {"cancelled": True}
        [row] = await db_read("transactions")
        assert row["status"] == "cancelled"
        [charge] = await db_read("charges")
        assert (charge["outcome"], charge["due_at"], charge["callback_body"]) == ("cancelled", None, None)
        again = await client.post(cancel_path, headers=internal_headers())
        assert again.status == 200
        # The payer can no longer pay it.
        page = await client.post(f"/sandbox/pay/{started['provider_transaction_id']}", data={"outcome": "succeed"})
        assert page.status == 200
        assert "cancelled" in await page.text()
        [charge] = await db_read("charges")
        assert charge["outcome"] == "cancelled"

    @pytest.mark.parametrize("outcome", ["succeed", "pending"])
    async def test_after_the_bank_took_the_money_is_409(
        self,
        make_client: Any,
        internal_headers: Callable[..., dict[str, str]],
        start_payment: Callable[..., Awaitable[dict[str, Any]]],
        db_read: Any,
        outcome: str,
    ) -> None:
        client = await make_client()
        started = await start_payment(client)
        pay = await client.post(
            f"/sandbox/pay/{started['provider_transaction_id']}", data={"outcome": outcome}, allow_redirects=False
        )
        assert pay.status == 303
        response = await client.post(f"/internal/payments/{started['payment_id']}/cancel", headers=internal_headers())
        assert response.status == 409
        assert (await response.json())["code"] == "not_cancellable"
        [row] = await db_read("transactions")
        assert row["status"] == "pending"

    async def test_after_a_decline_is_cancelled(
        self,
        make_client: Any,
        internal_headers: Callable[..., dict[str, str]],
        start_payment: Callable[..., Awaitable[dict[str, Any]]],
    ) -> None:
        client = await make_client()
        started = await start_payment(client)
        await client.post(
            f"/sandbox/pay/{started['provider_transaction_id']}", data={"outcome": "decline"}, allow_redirects=False
        )
        response = await client.post(f"/internal/payments/{started['payment_id']}/cancel", headers=internal_headers())
        assert response.status == 200

    async def test_after_a_success_callback_is_409(
        self,
        make_client: Any,
        internal_headers: Callable[..., dict[str, str]],
        start_payment: Callable[..., Awaitable[dict[str, Any]]],
        sandbox_callback: Any,
    ) -> None:
        client = await make_client()
        started = await start_payment(client)
        callback = sandbox_callback(started["provider_transaction_id"])
        assert (await client.post("/billing/sandbox", data=callback.body, headers=callback.headers)).status == 200
        response = await client.post(f"/internal/payments/{started['payment_id']}/cancel", headers=internal_headers())
        assert response.status == 409
        assert (await response.json())["code"] == "not_cancellable"

    async def test_concurrent_pay_and_cancel_never_both_win(
        self,
        make_client: Any,
        internal_headers: Callable[..., dict[str, str]],
        start_payment: Callable[..., Awaitable[dict[str, Any]]],
        db_read: Any,
    ) -> None:
        client = await make_client()
        for _ in range(5):
            started = await start_payment(client)
            pay, cancel = await asyncio.gather(
                client.post(
                    f"/sandbox/pay/{started['provider_transaction_id']}",
                    data={"outcome": "succeed"},
                    allow_redirects=False,
                ),
                client.post(f"/internal/payments/{started['payment_id']}/cancel", headers=internal_headers()),
            )
            paid = pay.status == 303
            cancelled = cancel.status == 200
            assert paid != cancelled, (pay.status, cancel.status)
        charges = await db_read("charges")
        transactions = {row["id"]: row["status"] for row in await db_read("transactions")}
        for charge in charges:
            expected = "cancelled" if charge["outcome"] == "cancelled" else "pending"
            assert transactions[charge["transaction_id"]] == expected
