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
import time
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from standardwebhooks.webhooks import Webhook

from .stripe_support import pay_with_card, stripe_shop

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


class TestStripe:
    async def test_a_card_payment_at_the_fake_stripe_succeeds_and_the_webhook_is_delivered(
        self, platform: Any, http: aiohttp.ClientSession, receiver: Any, localstripe: str
    ) -> None:
        shop = await stripe_shop(http, platform, receiver, localstripe)
        auth, endpoint_secret = shop.auth, shop.endpoint_secret
        payment = await pay_with_card(http, platform, auth)
        assert payment["provider_reference"].startswith("pi_")
        event = await receiver.wait("payment.succeeded")
        [(headers, body)] = [(h, b) for h, b in receiver.got if b"payment.succeeded" in b]
        verified = Webhook(endpoint_secret).verify(body, {k.lower(): v for k, v in headers.items()})
        assert verified["data"]["payment"]["id"] == payment["id"] == event["data"]["payment"]["id"]


class TestStripeRefunds:
    async def test_refunds_at_the_fake_stripe_succeed_with_their_webhooks(
        self, platform: Any, http: aiohttp.ClientSession, receiver: Any, localstripe: str
    ) -> None:
        shop = await stripe_shop(http, platform, receiver, localstripe)
        auth, endpoint_secret = shop.auth, shop.endpoint_secret
        payment = await pay_with_card(http, platform, auth)
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
        shop = await stripe_shop(http, platform, receiver, localstripe)
        auth, webhook_secret = shop.auth, shop.webhook_secret
        payment = await pay_with_card(http, platform, auth)
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
