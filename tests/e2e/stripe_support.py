"""The Stripe end-to-end tests' shop (tests/e2e/test_stripe.py, test_disputes.py): a test tenant whose
Stripe account is at localstripe (the ``localstripe`` fixture, tests/e2e/conftest.py), a card payment
paid through the hosted checkout and our Stripe payer page, and Stripe's events signed as Stripe signs
them (stripe-python's ``generate_signature_header``, through the adapter's ``signature_header``) and
POSTed through the gateway to ``/billing/stripe``."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from providers_svc.adapters.stripe.webhooks import signature_header


async def admin(http: aiohttp.ClientSession, platform: Any, method: str, path: str, body: Any) -> Any:
    headers = {"Authorization": f"Bearer {platform.admin_token}"}
    async with http.request(method, platform.gateway_url + path, json=body, headers=headers) as r:
        assert r.status in (200, 201), await r.text()
        return await r.json()


@dataclass(frozen=True)
class StripeShop:
    """A test tenant on a Stripe account at localstripe: its auth header, its webhook endpoint's signing
    secret, the account's Stripe secret key and webhook secret."""

    app_name: str
    token: str
    endpoint_secret: str
    secret_key: str
    webhook_secret: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def stripe_shop(
    http: aiohttp.ClientSession,
    platform: Any,
    receiver: Any,
    localstripe: str,
    events: Sequence[str] = ("*",),
) -> StripeShop:
    """A test tenant whose Stripe account is at localstripe, with a webhook endpoint at ``receiver`` for
    ``events`` (every one by default); localstripe's own webhooks go through the gateway, signed with the
    account's webhook secret."""
    secret_key, webhook_secret = f"sk_test_{secrets.token_hex(12)}", f"whsec_{secrets.token_hex(16)}"
    account = await admin(
        http,
        platform,
        "POST",
        "/admin/provider-accounts",
        {
            "provider": "stripe",
            "name": "Shop Stripe (localstripe)",
            "environment": "test",
            "currencies": ["USD"],
            "credentials": {"secret_key": secret_key, "webhook_secret": webhook_secret},
            "settings": {"api_base": localstripe, "flow": "payment_intent"},
        },
    )
    assert secret_key not in str(account) and webhook_secret not in str(account)
    app_name = f"shop-{secrets.token_hex(4)}"
    tenant = await admin(
        http, platform, "POST", "/admin/tenants", {"app_name": app_name, "display_name": "Stripe shop"}
    )
    await admin(
        http,
        platform,
        "PUT",
        f"/admin/tenants/{tenant['id']}/provider-accounts/stripe",
        {"provider_account_id": account["id"]},
    )
    async with http.post(
        f"{platform.gateway_url}/v1/auth/token", json={"app_name": app_name, "secret": tenant["secret"]}
    ) as r:
        token = (await r.json())["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    async with http.post(
        f"{platform.gateway_url}/v1/webhook-endpoints", json={"url": receiver.url, "events": list(events)}, headers=auth
    ) as r:
        assert r.status == 201, await r.text()
        endpoint_secret = (await r.json())["secret"]
    # localstripe signs its webhooks with the account's secret and posts them through the gateway.
    async with http.post(
        f"{localstripe}/_config/webhooks/e2e",
        data={"url": f"{platform.gateway_url}/billing/stripe", "secret": webhook_secret},
    ) as r:
        assert r.status == 200
    return StripeShop(app_name, token, endpoint_secret, secret_key, webhook_secret)


async def pay_with_card(http: aiohttp.ClientSession, platform: Any, auth: dict[str, str]) -> dict[str, Any]:
    """A 50.00 USD payment paid with the test card on our Stripe payer page, once it is SUCCEEDED."""
    async with http.post(
        f"{platform.gateway_url}/v1/payments",
        json={"amount": 5000, "currency": "USD", "order_id": "stripe-1", "providers": ["stripe"]},
        headers={**auth, "Idempotency-Key": secrets.token_hex(8)},
    ) as r:
        assert r.status == 201, await r.text()
        payment = await r.json()
    token = payment["checkout_token"]

    async with http.get(f"{platform.checkout_url}/c/{token}") as r:
        assert r.status == 200
        assert "stripe" in (await r.text()).lower()
    async with http.post(
        f"{platform.checkout_url}/c/{token}/pay", data={"provider": "stripe"}, allow_redirects=False
    ) as r:
        assert r.status == 303, await r.text()
        pay_page = r.headers["Location"]
    assert pay_page.startswith(platform.gateway_url + "/pay/stripe/")
    async with http.get(pay_page) as r:
        assert r.status == 200
        assert "50.00 USD" in await r.text()
        assert r.headers["Cache-Control"] == "no-store"
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    async with http.post(pay_page, data={"card": "visa"}, allow_redirects=False) as r:
        assert r.status == 303, await r.text()

    deadline = time.monotonic() + 30
    while True:
        async with http.get(f"{platform.gateway_url}/v1/payments/{payment['id']}", headers=auth) as r:
            done = await r.json()
        if done["status"] == "SUCCEEDED" or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert (done["status"], done["provider"]) == ("SUCCEEDED", "stripe")
    return dict(done)


def stripe_event(type_: str, obj: dict[str, Any], *, created: int | None = None) -> dict[str, Any]:
    """An event of a test account's own endpoint as Stripe builds it (no ``account``: not Connect)."""
    return {
        "id": f"evt_{secrets.token_hex(12)}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": created if created is not None else int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "type": type_,
        "data": {"object": obj},
    }


@dataclass(frozen=True)
class SignedEvent:
    """An event's exact bytes and the ``Stripe-Signature`` Stripe sent them with (these again are a
    replay, refused; Stripe's own retry signs the event afresh)."""

    body: bytes
    signature: str


def sign(event: dict[str, Any], secret: str, timestamp: int | None = None) -> SignedEvent:
    body = json.dumps(event)
    return SignedEvent(body.encode(), signature_header(body, secret, timestamp))


async def deliver(http: aiohttp.ClientSession, platform: Any, signed: SignedEvent) -> int:
    """POST the signed event through the gateway to ``/billing/stripe``, as Stripe does; the status."""
    async with http.post(
        f"{platform.gateway_url}/billing/stripe",
        data=signed.body,
        headers={"Content-Type": "application/json", "Stripe-Signature": signed.signature},
    ) as r:
        await r.read()
        return r.status
