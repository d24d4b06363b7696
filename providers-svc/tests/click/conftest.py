"""Helpers of the Click wiring tests: the app with Click enabled, a test Click account (known secret)
assigned to the tenant, payments started through the internal API, and forms signed as Click signs."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from providers_svc.protocols.click.signing import SignedFields, sign

SECRET = "click-test-secret"
SERVICE_ID = "111"
CREDENTIALS = {"service_id": SERVICE_ID, "merchant_id": "222", "merchant_user_id": "333", "secret_key": SECRET}
SIGN_TIME = "2026-12-05 10:00:00"
Client = TestClient[web.Request, web.Application]


def signed_form(action: str, *, secret: str = SECRET, **fields: str | None) -> dict[str, str]:
    """A form as Click posts it (every value a string), signed over the final raw strings. A field
    given as None is left out; ``sign_string=`` replaces the signature."""
    form: dict[str, str | None] = {
        "click_trans_id": "9001",
        "service_id": SERVICE_ID,
        "click_paydoc_id": "77001",
        "merchant_trans_id": "pay_missing",
        "amount": "1000.00",
        "action": action,
        "error": "0",
        "error_note": "Success",
        "sign_time": SIGN_TIME,
    }
    form.update(fields)
    present = {k: v for k, v in form.items() if v is not None}
    if "sign_string" not in fields:
        present["sign_string"] = sign(
            SignedFields(
                click_trans_id=present.get("click_trans_id", ""),
                service_id=present.get("service_id", ""),
                merchant_trans_id=present.get("merchant_trans_id", ""),
                merchant_prepare_id=present.get("merchant_prepare_id") if action == "1" else None,
                amount=present.get("amount", ""),
                action=action,
                sign_time=present.get("sign_time", ""),
            ),
            secret,
        )
    return present


@dataclass
class ClickShop:
    """One test tenant paid through a Click test account of its own (``SECRET``)."""

    client: Client
    internal_headers: Callable[..., dict[str, str]]
    tenant: str
    account_id: str = ""
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def start(self, amount: int = 100000, **fields: Any) -> dict[str, Any]:
        """Start a UZS payment with provider click; the 200 body plus ``payment_id``."""
        body = {
            "payment_id": f"pay_click{next(self._ids):04d}{id(self) % 10000:04d}",
            "provider": "click",
            "amount": amount,
            "currency": "UZS",
            "order_id": "order-1",
            "description": "Tea",
            "return_url": "http://127.0.0.1:8080/c/tok_1/return",
            **fields,
        }
        resp = await self.client.post("/internal/payments/start", json=body, headers=self.internal_headers(self.tenant))
        assert resp.status == 200, await resp.text()
        data: dict[str, Any] = await resp.json()
        data["payment_id"] = body["payment_id"]
        return data

    async def post(self, form: dict[str, str], path: str | None = None) -> dict[str, Any]:
        """POST a form to the endpoint of its action (or ``path``); the JSON answer (always HTTP 200)."""
        path = path or ("/billing/click/complete" if form.get("action") == "1" else "/billing/click/prepare")
        resp = await self.client.post(path, data=form)
        assert resp.status == 200, await resp.text()
        answer: dict[str, Any] = await resp.json()
        return answer

    async def prepare(self, payment_id: str, **fields: str | None) -> dict[str, Any]:
        return await self.post(signed_form("0", merchant_trans_id=payment_id, **fields))

    async def complete(self, payment_id: str, prepare_id: object, **fields: str | None) -> dict[str, Any]:
        form = signed_form("1", merchant_trans_id=payment_id, merchant_prepare_id=str(prepare_id), **fields)
        return await self.post(form)


@pytest.fixture
def click_settings() -> dict[str, Any]:
    return {"enabled_providers": ["sandbox", "click"]}


@pytest.fixture
async def click_client(make_client: Any, click_settings: dict[str, Any]) -> Client:
    client: Client = await make_client(**click_settings)
    return client


async def add_click_account(
    client: Client, internal_headers: Callable[..., dict[str, str]], tenant: str, **overrides: Any
) -> str:
    admin = internal_headers(None, issuer="gateway")
    body = {
        "provider": "click",
        "name": "Shop Click (test)",
        "environment": "test",
        "currencies": ["UZS"],
        "credentials": CREDENTIALS,
        **overrides,
    }
    resp = await client.post("/admin/provider-accounts", json=body, headers=admin)
    assert resp.status == 201, await resp.text()
    account_id = str((await resp.json())["id"])
    resp = await client.put(
        f"/admin/tenants/{tenant}/provider-accounts/click",
        json={"provider_account_id": account_id},
        headers=internal_headers(tenant, issuer="gateway"),
    )
    assert resp.status == 200, await resp.text()
    return account_id


@pytest.fixture
async def shop(click_client: Client, internal_headers: Callable[..., dict[str, str]]) -> ClickShop:
    tenant = "ten_clickshop000001"
    account_id = await add_click_account(click_client, internal_headers, tenant)
    return ClickShop(click_client, internal_headers, tenant, account_id)


Reader = Callable[..., Awaitable[list[Any]]]
