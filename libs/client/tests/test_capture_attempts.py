"""``payments.capture`` and ``payments.attempts``, written against their contract while other branches
build them (manual capture: ``POST /v1/payments/{id}/capture``, status AUTHORIZED, ``capture_method``,
``amount_capturable``, ``amount_captured``, ``authorization_expires_at``; attempts:
``GET /v1/payments/{id}/attempts``). The embedded-platform cases fail until both are merged; the
scripted ones check what the client sends and reads, and pass now."""

from __future__ import annotations

import pytest
from billing_client import AsyncBillingClient, ConflictError, NotFoundError, PaymentStatus

from .proxy import proxying
from .scripted import PAYMENT, Step, scripted
from .support import Tenant, pay_at_sandbox, wait_for_status

AUTHORIZED = {
    **PAYMENT,
    "status": "SUCCEEDED",
    "capture_method": "manual",
    "amount_capturable": 0,
    "amount_captured": 3000,
    "authorization_expires_at": "2026-12-13T00:00:00Z",
}
ATTEMPTS = {
    "object": "list",
    "data": [
        {
            "id": "att_1",
            "object": "payment_attempt",
            "payment_id": "pay_1",
            "provider": "sandbox",
            "status": "failed",
            "provider_reference": "ptx_1",
            "failure_code": "card_declined",
            "failure_message": "Declined",
            "created_at": "2026-12-06T00:00:00Z",
            "updated_at": "2026-12-06T00:00:01Z",
            "a_field_added_later": 1,
        }
    ],
    "has_more": False,
}


class TestWhatTheClientSends:
    async def test_capture_posts_the_amount_with_one_key_across_retries(self) -> None:
        async with (
            scripted(Step(503, {"code": "unavailable"}, {"Retry-After": "0"}), Step(200, AUTHORIZED)) as s,
            AsyncBillingClient(s.url, "shop", "secret") as client,
        ):
            payment = await client.payments.capture("pay_1", amount=3000)
        assert (payment.amount_captured, payment.capture_method) == (3000, "manual")
        assert payment.authorization_expires_at is not None
        (_, m1, p1, h1), (_, m2, p2, h2) = s.requests
        assert (m1, p1) == (m2, p2) == ("POST", "/v1/payments/pay_1/capture")
        assert h1["Idempotency-Key"] == h2["Idempotency-Key"]

    async def test_attempts_reads_the_list(self) -> None:
        async with scripted(Step(200, ATTEMPTS)) as s, AsyncBillingClient(s.url, "shop", "secret") as client:
            attempts = await client.payments.attempts("pay_1")
        assert [(a.id, a.provider, a.status, a.failure_code) for a in attempts] == [
            ("att_1", "sandbox", "failed", "card_declined")
        ]
        assert s.requests[0][1:3] == ("GET", "/v1/payments/pay_1/attempts")


@pytest.mark.e2e
@pytest.mark.slow
class TestCaptureOnThePlatform:
    async def test_authorize_then_capture_part(self, client: AsyncBillingClient, tenant: Tenant) -> None:
        payment = await client.payments.create(amount=5000, currency="USD", order_id="o-1", capture_method="manual")
        assert payment.capture_method == "manual"
        await pay_at_sandbox(tenant, payment)
        held = await wait_for_status(client, payment.id, PaymentStatus.AUTHORIZED)
        assert (held.status, held.amount_capturable) == ("AUTHORIZED", 5000)
        assert held.authorization_expires_at is not None

        captured = await client.payments.capture(payment.id, amount=3000)
        assert (captured.status, captured.amount_captured) == ("SUCCEEDED", 3000)
        with pytest.raises(ConflictError) as raised:
            await client.payments.capture(payment.id)
        assert raised.value.code == "invalid_state"

    async def test_a_dropped_capture_answer_captures_once(self, tenant: Tenant) -> None:
        async with (
            proxying(tenant.gateway_url) as proxy,
            AsyncBillingClient(proxy.url, tenant.app_name, tenant.secret) as client,
        ):
            payment = await client.payments.create(amount=5000, currency="USD", order_id="o-2", capture_method="manual")
            await pay_at_sandbox(tenant, payment)
            await wait_for_status(client, payment.id, PaymentStatus.AUTHORIZED)
            proxy.drop_next.add(("POST", f"/v1/payments/{payment.id}/capture"))
            captured = await client.payments.capture(payment.id)
        assert (captured.status, captured.amount_captured) == ("SUCCEEDED", 5000)
        tries = proxy.of("POST", f"/v1/payments/{payment.id}/capture")
        assert [t.status for t in tries] == [None, 200]
        assert tries[0].headers["Idempotency-Key"] == tries[1].headers["Idempotency-Key"]


@pytest.mark.e2e
@pytest.mark.slow
class TestAttemptsOnThePlatform:
    async def test_one_attempt_per_provider_try(self, client: AsyncBillingClient, tenant: Tenant) -> None:
        payment = await client.payments.create(amount=5000, currency="USD", order_id="o-1")
        assert await client.payments.attempts(payment.id) == []
        await pay_at_sandbox(tenant, payment)
        await wait_for_status(client, payment.id, PaymentStatus.SUCCEEDED)
        attempts = await client.payments.attempts(payment.id)
        assert len(attempts) == 1
        attempt = attempts[0]
        assert attempt.id.startswith("att_") and attempt.object == "payment_attempt"
        assert (attempt.payment_id, attempt.provider) == (payment.id, "sandbox")

    async def test_an_unknown_payment_is_not_found(self, client: AsyncBillingClient) -> None:
        with pytest.raises(NotFoundError):
            await client.payments.attempts("pay_doesnotexist000000")
