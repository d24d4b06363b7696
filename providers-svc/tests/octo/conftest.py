"""Fixtures of the Octo tests: a fake Octo (the in-memory ``OctoBook`` on a loopback server, a peer
outside our walls), an Octo account of a test tenant pointing at it, and callbacks signed as Octo
signs them."""

from __future__ import annotations

import json
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from providers_svc.protocols.octo.callbacks import Callback, SignatureFormula, expected_signature
from providers_svc.simulators.octo import OctoBook, create_octo_app

SHOP_ID = 4242
SECRET = "octo-shop-secret-for-tests-0123"
UNIQUE_KEY = "octo-unique-key-from-octos-team"  # the unique_key reading's own key (§3.4)
TENANT = "ten_aaaaaaaaaaaaaaaa"  # the conftest's TENANT_A, a test tenant


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class FakeOcto:
    book: OctoBook
    server: TestServer
    url: str


@pytest.fixture
async def octo(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> FakeOcto:
    book = OctoBook(shops={SHOP_ID: SECRET})
    server = await aiohttp_server(create_octo_app(book))
    url = str(server.make_url("")).rstrip("/")
    book.base_url = url
    return FakeOcto(book, server, url)


@pytest.fixture
def admin(internal_headers: Any) -> dict[str, str]:
    return dict(internal_headers(None, issuer="gateway"))


@dataclass
class OctoShop:
    """A test tenant's app with an Octo account at the fake Octo, and helpers to pay through it."""

    client: TestClient[Any, Any]
    octo: FakeOcto
    account_id: str
    internal_headers: Any
    payment_request: Any

    async def start(self, **fields: Any) -> dict[str, Any]:
        body = self.payment_request(provider="octo", currency="UZS", amount=150010, **fields)
        resp = await self.client.post("/internal/payments/start", json=body, headers=self.internal_headers(TENANT))
        assert resp.status == 200, await resp.text()
        data: dict[str, Any] = await resp.json()
        data["payment_id"] = body["payment_id"]
        return data

    async def notify(self, body: dict[str, Any] | bytes) -> Any:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return await self.client.post("/billing/octo", data=raw, headers={"Content-Type": "application/json"})

    async def metrics(self) -> str:
        return str(await (await self.client.get("/metrics")).text())


def signed(
    txn_id: str,
    payment_uuid: str,
    status: str,
    *,
    secret: str = SECRET,
    formula: SignatureFormula = "documented",
    **extra: Any,
) -> dict[str, Any]:
    """A callback body as Octo sends it, signed with ``secret``."""
    hash_key = secrets.token_hex(16)
    callback = Callback(txn_id, payment_uuid, status, "", hash_key, None, {})
    body: dict[str, Any] = {
        "shop_transaction_id": txn_id,
        "octo_payment_UUID": payment_uuid,
        "status": status,
        "signature": expected_signature(callback, secret=secret, formula=formula),
        "hash_key": hash_key,
        "total_sum": 1500.1,
        "transfer_sum": 1480.0,
        "refunded_sum": 0,
        "maskedPan": "860002******0000",
        "payed_time": "2026-12-05 22:00:00",
    }
    body.update(extra)
    return body


@pytest.fixture
def shop_factory(
    make_client: Any, octo: FakeOcto, admin: dict[str, str], internal_headers: Any, payment_request: Any
) -> Callable[..., Awaitable[OctoShop]]:
    async def make(credentials: dict[str, str] | None = None, **settings: str) -> OctoShop:
        client = await make_client(enabled_providers=["sandbox", "octo"])
        resp = await client.post(
            "/admin/provider-accounts",
            json={
                "provider": "octo",
                "name": "Shop Octo (test)",
                "environment": "test",
                "currencies": ["UZS", "USD"],
                "credentials": {"shop_id": str(SHOP_ID), "secret": SECRET, **(credentials or {})},
                "settings": {"api_base": octo.url, **settings},
            },
            headers=admin,
        )
        assert resp.status == 201, await resp.text()
        account_id = str((await resp.json())["id"])
        resp = await client.put(
            f"/admin/tenants/{TENANT}/provider-accounts/octo",
            json={"provider_account_id": account_id},
            headers=internal_headers(TENANT, issuer="gateway"),
        )
        assert resp.status == 200, await resp.text()
        return OctoShop(client, octo, account_id, internal_headers, payment_request)

    return make


@pytest.fixture
async def shop(shop_factory: Callable[..., Awaitable[OctoShop]]) -> OctoShop:
    return await shop_factory()
