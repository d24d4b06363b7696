"""Stripe through the gateway only, in both modes, against localstripe (a fake Stripe on loopback,
PROTOCOLS.md §5a): the admin creates a Stripe account whose ``api_base`` is localstripe and assigns it to a
test tenant; the tenant creates a payment; the payer goes through the hosted checkout to our Stripe payer
page and pays with the test card; localstripe's signed webhook reaches ``/billing/stripe`` through the
gateway; the payment is SUCCEEDED and the tenant receives a verified ``payment.succeeded``."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from billing_runtime.testing import free_port
from standardwebhooks.webhooks import Webhook

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LOCALSTRIPE = Path(__file__).resolve().parents[2] / "providers-svc/tests/stripe_payments/localstripe_server.py"


@pytest.fixture(scope="session")
async def localstripe() -> AsyncIterator[str]:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(sys.executable, str(LOCALSTRIPE), str(port))
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                await writer.wait_closed()
                break
            except OSError:
                if time.monotonic() > deadline or proc.returncode is not None:
                    raise RuntimeError("localstripe did not start") from None
                await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            async with asyncio.timeout(10):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def _admin(http: aiohttp.ClientSession, platform: Any, method: str, path: str, body: Any) -> Any:
    headers = {"Authorization": f"Bearer {platform.admin_token}"}
    async with http.request(method, platform.gateway_url + path, json=body, headers=headers) as r:
        assert r.status in (200, 201), await r.text()
        return await r.json()


async def _stripe_shop(
    http: aiohttp.ClientSession, platform: Any, receiver: Any, localstripe: str
) -> tuple[dict[str, str], str, str]:
    """A test tenant whose Stripe account is at localstripe, with a webhook endpoint for every event:
    its auth header, the endpoint's signing secret and the account's Stripe webhook secret."""
    secret_key, webhook_secret = f"sk_test_{secrets.token_hex(12)}", f"whsec_{secrets.token_hex(16)}"
    account = await _admin(
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
    tenant = await _admin(
        http, platform, "POST", "/admin/tenants", {"app_name": app_name, "display_name": "Stripe shop"}
    )
    await _admin(
        http,
        platform,
        "PUT",
        f"/admin/tenants/{tenant['id']}/provider-accounts/stripe",
        {"provider_account_id": account["id"]},
    )
    async with http.post(
        f"{platform.gateway_url}/v1/auth/token", json={"app_name": app_name, "secret": tenant["secret"]}
    ) as r:
        auth = {"Authorization": f"Bearer {(await r.json())['access_token']}"}
    async with http.post(
        f"{platform.gateway_url}/v1/webhook-endpoints", json={"url": receiver.url, "events": ["*"]}, headers=auth
    ) as r:
        assert r.status == 201, await r.text()
        endpoint_secret = (await r.json())["secret"]
    # localstripe signs its webhooks with the account's secret and posts them through the gateway.
    async with http.post(
        f"{localstripe}/_config/webhooks/e2e",
        data={"url": f"{platform.gateway_url}/billing/stripe", "secret": webhook_secret},
    ) as r:
        assert r.status == 200
    return auth, endpoint_secret, webhook_secret


async def _pay_with_card(http: aiohttp.ClientSession, platform: Any, auth: dict[str, str]) -> dict:
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


class TestStripe:
    async def test_a_card_payment_at_the_fake_stripe_succeeds_and_the_webhook_is_delivered(
        self, platform: Any, http: aiohttp.ClientSession, receiver: Any, localstripe: str
    ) -> None:
        auth, endpoint_secret, _ = await _stripe_shop(http, platform, receiver, localstripe)
        payment = await _pay_with_card(http, platform, auth)
        assert payment["provider_reference"].startswith("pi_")
        event = await receiver.wait("payment.succeeded")
        [(headers, body)] = [(h, b) for h, b in receiver.got if b"payment.succeeded" in b]
        verified = Webhook(endpoint_secret).verify(body, {k.lower(): v for k, v in headers.items()})
        assert verified["data"]["payment"]["id"] == payment["id"] == event["data"]["payment"]["id"]


class TestStripeRefunds:
    async def test_refunds_at_the_fake_stripe_succeed_with_their_webhooks(
        self, platform: Any, http: aiohttp.ClientSession, receiver: Any, localstripe: str
    ) -> None:
        auth, endpoint_secret, _ = await _stripe_shop(http, platform, receiver, localstripe)
        payment = await _pay_with_card(http, platform, auth)
        refunds = f"{platform.gateway_url}/v1/payments/{payment['id']}/refunds"
        made = []
        for key, body in (("s-1", {"amount": 2000, "reason": "requested_by_customer"}), ("s-2", {})):
            async with http.post(refunds, json=body, headers={**auth, "Idempotency-Key": key}) as r:
                assert r.status == 201, await r.text()
                made.append(await r.json())
        assert [(r["status"], r["amount"]) for r in made] == [("PENDING", 2000), ("PENDING", 3000)]

        verifier = Webhook(endpoint_secret)
        deadline = time.monotonic() + 30
        while True:
            bodies = [verifier.verify(b, {k.lower(): v for k, v in h.items()}) for h, b in receiver.got]
            outcomes = [b for b in bodies if b["type"] in ("refund.succeeded", "refund.failed")]
            if len(outcomes) >= 2 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        # One outcome per refund, though Stripe both answers the call and sends its webhooks.
        await asyncio.sleep(1)
        bodies = [verifier.verify(b, {k.lower(): v for k, v in h.items()}) for h, b in receiver.got]
        outcomes = [b for b in bodies if b["type"].startswith("refund.") and b["type"] != "refund.created"]
        assert sorted((b["type"], b["data"]["refund"]["id"]) for b in outcomes) == sorted(
            ("refund.succeeded", r["id"]) for r in made
        ), [b["type"] for b in bodies]
        assert [b["data"]["refund"]["id"] for b in bodies if b["type"] == "refund.created"] == [r["id"] for r in made]
        for hook in outcomes:
            assert hook["data"]["refund"]["provider_refund_id"].startswith("re_")
        async with http.get(refunds, headers=auth) as r:
            listed = (await r.json())["data"]
        assert {(r["id"], r["status"]) for r in listed} == {(r["id"], "SUCCEEDED") for r in made}
        async with http.get(f"{platform.gateway_url}/v1/payments/{payment['id']}", headers=auth) as r:
            done = await r.json()
        assert (done["status"], done["amount_refunded"]) == ("REFUNDED", 5000)
        # Stripe was asked for each refund keyed by our refund id (a retry is deduplicated by it).
        async with http.get(f"{localstripe}/_config/requests") as r:
            asked = [q for q in await r.json() if q["method"] == "POST" and q["path"] == "/v1/refunds"]
        mine = [q for q in asked if q["idempotency_key"] in {r["id"] for r in made}]
        assert {q["idempotency_key"] for q in mine} == {r["id"] for r in made}

    async def test_a_refund_made_in_stripes_dashboard_becomes_a_refund_of_the_payment(
        self, platform: Any, http: aiohttp.ClientSession, receiver: Any, localstripe: str
    ) -> None:
        auth, _, webhook_secret = await _stripe_shop(http, platform, receiver, localstripe)
        payment = await _pay_with_card(http, platform, auth)
        # localstripe sends no refund events: Stripe's refund.created for a refund made in the
        # dashboard, signed with the account's webhook secret as Stripe signs it.
        stripe_refund = {
            "id": f"re_{secrets.token_hex(8)}",
            "object": "refund",
            "amount": 1500,
            "currency": "usd",
            "payment_intent": payment["provider_reference"],
            "status": "succeeded",
            "metadata": {},
        }
        event = {
            "id": f"evt_{secrets.token_hex(8)}",
            "object": "event",
            "type": "refund.created",
            "created": int(time.time()),
            "livemode": False,
            "api_version": "2024-06-20",
            "data": {"object": stripe_refund},
        }
        body = json.dumps(event).encode()
        stamp = str(int(time.time()))
        signature = hmac.new(webhook_secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        async with http.post(
            f"{platform.gateway_url}/billing/stripe",
            data=body,
            headers={"Content-Type": "application/json", "Stripe-Signature": f"t={stamp},v1={signature}"},
        ) as r:
            assert r.status == 200, await r.text()

        succeeded = await receiver.wait("refund.succeeded")
        created = await receiver.wait("refund.created")
        refund = succeeded["data"]["refund"]
        assert created["data"]["refund"]["id"] == refund["id"]
        assert (refund["provider_refund_id"], refund["amount"], refund["status"]) == (
            stripe_refund["id"],
            1500,
            "SUCCEEDED",
        )
        async with http.get(f"{platform.gateway_url}/v1/payments/{payment['id']}", headers=auth) as r:
            partly = await r.json()
        assert (partly["status"], partly["amount_refunded"]) == ("PARTIALLY_REFUNDED", 1500)
        # What is left is refundable through the API.
        async with http.post(
            f"{platform.gateway_url}/v1/payments/{payment['id']}/refunds",
            json={},
            headers={**auth, "Idempotency-Key": "rest"},
        ) as r:
            assert r.status == 201, await r.text()
            assert (await r.json())["amount"] == 3500
        deadline = time.monotonic() + 30
        while True:
            async with http.get(f"{platform.gateway_url}/v1/payments/{payment['id']}", headers=auth) as r:
                done = await r.json()
            if done["status"] == "REFUNDED" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert (done["status"], done["amount_refunded"]) == ("REFUNDED", 5000)
        # Stripe was asked for the rest only: the dashboard's refund is announced to the tenant as
        # refund.created, but it was made already and must never be made again.
        async with http.get(f"{localstripe}/_config/requests") as r:
            asked = [q for q in await r.json() if q["method"] == "POST" and q["path"] == "/v1/refunds"]
        forms = [parse_qs(q["body"]) for q in asked]
        assert [f["amount"] for f in forms if f["payment_intent"] == [payment["provider_reference"]]] == [["3500"]]
