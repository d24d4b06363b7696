"""Fixtures of the Stripe tests: localstripe (the fake Stripe, PROTOCOLS.md §5a) started once per test
session as a subprocess on a free loopback port and stopped after; a Stripe account of a test tenant
pointing at it; events signed as Stripe signs them (stripe-python's ``generate_signature_header``)."""

from __future__ import annotations

import json
import secrets
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from billing_runtime.testing import serving
from providers_svc.adapters.stripe import StripeAdapter
from providers_svc.adapters.stripe.webhooks import signature_header
from providers_svc.keys import key_ring_key, stripe_webhooks_key, uow_factory_key
from providers_svc.services.accounts import account_by_id

TENANT = "ten_aaaaaaaaaaaaaaaa"  # the conftest's TENANT_A, a test tenant
SERVER = Path(__file__).with_name("localstripe_server.py")


@dataclass(frozen=True)
class LocalStripe:
    url: str

    async def requests(self, path_prefix: str = "/v1/") -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as http, http.get(f"{self.url}/_config/requests") as resp:
            seen: list[dict[str, Any]] = await resp.json()
        return [r for r in seen if r["path"].startswith(path_prefix)]

    async def hook(self, url: str, secret: str) -> None:
        """Point localstripe's one webhook at ``url`` (the same id each time: the last test's wins)."""
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{self.url}/_config/webhooks/providers-tests", data={"url": url, "secret": secret}) as resp,
        ):
            assert resp.status == 200, await resp.text()

    async def call(self, method: str, path: str, key: str, **form: str) -> dict[str, Any]:
        """A call to the fake as a Stripe dashboard would make it (setting up a test's state)."""
        headers = {"Authorization": f"Bearer {key}"}
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, f"{self.url}{path}", data=form or None, headers=headers) as resp,
        ):
            body: dict[str, Any] = await resp.json()
            return body


@pytest.fixture(scope="session")
async def localstripe() -> AsyncIterator[LocalStripe]:
    async with serving([sys.executable, str(SERVER)], "localstripe") as url:
        yield LocalStripe(url)


def new_secret_key() -> str:
    return f"sk_test_{secrets.token_hex(12)}"


def new_webhook_secret() -> str:
    return f"whsec_{secrets.token_hex(16)}"


@dataclass
class StripeShop:
    """A test tenant's app with a Stripe account at localstripe, and helpers to pay and notify."""

    client: TestClient[Any, Any]
    localstripe: LocalStripe
    account_id: str
    secret_key: str
    webhook_secret: str
    internal_headers: Any
    payment_request: Any
    admin: dict[str, str]
    counter: list[int] = field(default_factory=lambda: [0])
    # The last ``t`` each body was signed with: Stripe signs every delivery attempt afresh.
    signed: dict[str, int] = field(default_factory=dict)

    async def start(self, **fields: Any) -> dict[str, Any]:
        body = self.payment_request(**{"provider": "stripe", "currency": "USD", "amount": 5000, **fields})
        resp = await self.client.post("/internal/payments/start", json=body, headers=self.internal_headers(TENANT))
        assert resp.status == 200, await resp.text()
        data: dict[str, Any] = await resp.json()
        data["payment_id"] = body["payment_id"]
        return data

    async def adapter(self) -> StripeAdapter:
        app = self.client.app
        account = await account_by_id(app[uow_factory_key], app[key_ring_key], self.account_id)
        assert account is not None
        return app[stripe_webhooks_key].provider.bound(account)

    async def pay(self, started: dict[str, Any], card: str) -> Any:
        """The payer's choice on our payer page (test cards at the fake Stripe)."""
        path = started["redirect_url"].split("://", 1)[1].split("/", 1)[1]
        return await self.client.post(f"/{path}", data={"card": card}, allow_redirects=False)

    async def send(self, event: dict[str, Any], *, secret: str | None = None, timestamp: int | None = None) -> Any:
        """Deliver ``event`` as Stripe does: signed now, and a body sent before (Stripe's redelivery) a
        second later than its last ``t`` (the same ``t`` and body again is a replay, refused). An
        explicit ``timestamp`` is used as given (a replay, a stale signature)."""
        body = json.dumps(event)
        if timestamp is None:
            timestamp = max(int(time.time()), self.signed.get(body, 0) + 1)
        self.signed[body] = max(timestamp, self.signed.get(body, 0))
        header = signature_header(body, secret or self.webhook_secret, timestamp)
        return await self.client.post(
            "/billing/stripe",
            data=body.encode(),
            headers={"Stripe-Signature": header, "Content-Type": "application/json"},
        )

    async def add_account(self, **settings: str) -> tuple[str, str]:
        """Another Stripe account (id, secret key), with this shop's webhook secret unless given."""
        secret = settings.pop("webhook_secret", self.webhook_secret)
        environment = settings.pop("environment", "test")
        # A key of the account's own mode (a live key only on a production account).
        key = new_secret_key() if environment == "test" else new_secret_key().replace("sk_test_", "sk_live_", 1)
        resp = await self.client.post(
            "/admin/provider-accounts",
            json={
                "provider": "stripe",
                "name": "Another Stripe",
                "environment": environment,
                "currencies": ["USD", "EUR", "JPY"],
                "credentials": {"secret_key": key, "webhook_secret": secret},
                "settings": {"api_base": self.localstripe.url, **settings},
            },
            headers=self.admin,
        )
        assert resp.status == 201, await resp.text()
        return str((await resp.json())["id"]), key


_counter = iter(range(10**9))


def stripe_event(
    type_: str,
    obj: dict[str, Any],
    *,
    created: int | None = None,
    account: str | None = None,
    livemode: bool = False,
    event_id: str | None = None,
) -> dict[str, Any]:
    """An event as Stripe builds it (the fields we read, and a few more)."""
    event: dict[str, Any] = {
        "id": event_id or f"evt_test{next(_counter)}{secrets.token_hex(6)}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": created if created is not None else int(time.time()),
        "livemode": livemode,
        "pending_webhooks": 1,
        "type": type_,
        "data": {"object": obj},
    }
    if account is not None:
        event["account"] = account
    return event


@pytest.fixture
def admin(internal_headers: Any) -> dict[str, str]:
    return dict(internal_headers(None, issuer="gateway"))


ShopFactory = Callable[..., Awaitable[StripeShop]]


@pytest.fixture
def stripe_shop_factory(
    make_client: Any, localstripe: LocalStripe, admin: dict[str, str], internal_headers: Any, payment_request: Any
) -> ShopFactory:
    async def make(*, stripe_followers: Any = (), **settings: str) -> StripeShop:
        client = await make_client(enabled_providers=["sandbox", "stripe"], stripe_followers=stripe_followers)
        key, secret = new_secret_key(), new_webhook_secret()
        resp = await client.post(
            "/admin/provider-accounts",
            json={
                "provider": "stripe",
                "name": "Shop Stripe (test)",
                "environment": "test",
                "currencies": ["USD", "EUR", "JPY", "ISK"],
                "credentials": {"secret_key": key, "webhook_secret": secret},
                "settings": {"api_base": localstripe.url, "flow": "payment_intent", **settings},
            },
            headers=admin,
        )
        assert resp.status == 201, await resp.text()
        account_id = str((await resp.json())["id"])
        resp = await client.put(
            f"/admin/tenants/{TENANT}/provider-accounts/stripe",
            json={"provider_account_id": account_id},
            headers=internal_headers(TENANT, issuer="gateway"),
        )
        assert resp.status == 200, await resp.text()
        return StripeShop(client, localstripe, account_id, key, secret, internal_headers, payment_request, admin)

    return make


@pytest.fixture
async def shop(stripe_shop_factory: ShopFactory) -> StripeShop:
    return await stripe_shop_factory()
