"""Manual capture end to end through the gateway only, in both modes: a tenant creates a payment with
``capture_method: manual``, the payer pays on the sandbox page (the bank only authorizes), the
payment becomes AUTHORIZED with a ``payment.authorized`` webhook; the tenant captures part of it
(``POST /v1/payments/{id}/capture``, replayed safely), the payment is SUCCEEDED with a
``payment.succeeded`` webhook carrying ``amount_captured``, and refunds are bounded by what was
captured. Every webhook is verified with the Standard Webhooks verifier."""

from __future__ import annotations

import secrets
from typing import Any

import aiohttp
import pytest

from .test_refunds import refund, settle, subscribe, verified_webhooks

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def capture(
    http: aiohttp.ClientSession, platform: Any, auth: dict[str, str], payment_id: str, key: str, **body: Any
) -> tuple[int, dict]:
    async with http.post(
        f"{platform.gateway_url}/v1/payments/{payment_id}/capture",
        json=body,
        headers={**auth, "Idempotency-Key": key},
    ) as r:
        return r.status, dict(await r.json(content_type=None)) | {"_replayed": r.headers.get("Idempotent-Replayed")}


async def authorize_at_sandbox(http: aiohttp.ClientSession, platform: Any, tenant: Any) -> dict:
    payment = await tenant.create_payment(secrets.token_hex(8), capture_method="manual", amount=5000)
    assert (payment["capture_method"], payment["status"]) == ("manual", "CREATED")
    async with http.post(
        f"{platform.checkout_url}/c/{payment['checkout_token']}/pay",
        data={"provider": "sandbox"},
        allow_redirects=False,
    ) as r:
        assert r.status == 303, await r.text()
        page = r.headers["Location"]
    async with http.post(page, data={"outcome": "succeed"}, allow_redirects=False) as r:
        assert r.status == 303, await r.text()
    held = await tenant.wait_for_status(payment["id"], "AUTHORIZED")
    assert held["status"] == "AUTHORIZED", held
    return held


class TestManualCapture:
    async def test_authorize_capture_part_then_refunds_bounded_by_the_capture(
        self, platform: Any, new_tenant: Any, http: aiohttp.ClientSession, receiver: Any
    ) -> None:
        tenant = await new_tenant()
        secret = await subscribe(http, platform, tenant.auth, receiver.url)
        held = await authorize_at_sandbox(http, platform, tenant)
        assert (held["amount_capturable"], held["amount_captured"]) == (5000, 0)
        assert held["authorization_expires_at"] is not None
        # The payer's page says the checkout is done.
        async with http.get(f"{platform.checkout_url}/c/{held['checkout_token']}") as r:
            assert "Payment authorized" in await r.text()

        status, over = await capture(http, platform, tenant.auth, held["id"], "cap-over", amount=5001)
        assert (status, over["code"]) == (422, "amount_exceeds_capturable")
        status, captured = await capture(http, platform, tenant.auth, held["id"], "cap-1", amount=3000)
        assert status == 200, captured
        assert (captured["status"], captured["amount_captured"], captured["amount_capturable"]) == (
            "SUCCEEDED",
            3000,
            0,
        )
        status, replayed = await capture(http, platform, tenant.auth, held["id"], "cap-1", amount=3000)
        assert (status, replayed["_replayed"], replayed["amount_captured"]) == (200, "true", 3000)
        status, again = await capture(http, platform, tenant.auth, held["id"], "cap-2")
        assert (status, again["code"]) == (409, "invalid_state")

        bodies = await verified_webhooks(
            receiver,
            secret,
            {"payment.created": 1, "payment.pending": 1, "payment.authorized": 1, "payment.succeeded": 1},
        )
        authorized = next(b for b in bodies if b["type"] == "payment.authorized")["data"]["payment"]
        succeeded = next(b for b in bodies if b["type"] == "payment.succeeded")["data"]["payment"]
        assert (authorized["status"], authorized["amount_capturable"]) == ("AUTHORIZED", 5000)
        assert (succeeded["status"], succeeded["amount_captured"]) == ("SUCCEEDED", 3000)
        assert succeeded["sequence"] > authorized["sequence"]
        assert [e["type"] for e in await tenant.events(type="payment.authorized")] == ["payment.authorized"]

        status, too_much = await refund(http, platform, tenant.auth, held["id"], "r-over", amount=3001)
        assert (status, too_much["code"], too_much["amount_refundable"]) == (422, "amount_exceeds_refundable", 3000)
        status, rest = await refund(http, platform, tenant.auth, held["id"], "r-all")
        assert (status, rest["amount"]) == (201, 3000), rest
        assert (await settle(http, platform, tenant.auth, rest["id"]))["status"] == "SUCCEEDED"
        done = await tenant.wait_for_status(held["id"], "REFUNDED")
        assert (done["status"], done["amount_refunded"], done["amount_captured"]) == ("REFUNDED", 3000, 3000)

    async def test_cancel_releases_an_authorized_payment(
        self, platform: Any, new_tenant: Any, http: aiohttp.ClientSession
    ) -> None:
        tenant = await new_tenant()
        held = await authorize_at_sandbox(http, platform, tenant)
        async with http.post(f"{platform.gateway_url}/v1/payments/{held['id']}/cancel", headers=tenant.auth) as r:
            assert r.status == 200, await r.text()
            cancelled = await r.json()
        assert (cancelled["status"], cancelled["amount_capturable"]) == ("CANCELLED", 0)
        status, late = await capture(http, platform, tenant.auth, held["id"], "late")
        assert (status, late["code"]) == (409, "invalid_state")
