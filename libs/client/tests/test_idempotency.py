"""A create retried over a flaky connection makes one payment: a loopback proxy lets the gateway
create it, then drops the answer; the client retries with the same Idempotency-Key and gets the
stored answer replayed."""

from __future__ import annotations

import asyncio

import pytest
from billing_client import AsyncBillingClient, BillingClient

from .proxy import proxying
from .support import Tenant

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CREATE = ("POST", "/v1/payments")


class TestIdempotentCreate:
    async def test_a_dropped_answer_is_retried_into_one_payment(self, tenant: Tenant) -> None:
        async with proxying(tenant.gateway_url) as proxy:
            proxy.drop_next.add(CREATE)
            async with AsyncBillingClient(proxy.url, tenant.app_name, tenant.secret) as client:
                payment = await client.payments.create(amount=5000, currency="USD", order_id="flaky-1")
                listed = [p.id async for p in client.payments.list(order_id="flaky-1")]
        tries = proxy.of(*CREATE)
        assert [t.status for t in tries] == [None, 201]
        assert tries[0].headers["Idempotency-Key"] == tries[1].headers["Idempotency-Key"]
        assert listed == [payment.id]

    async def test_the_sync_client_too(self, tenant: Tenant) -> None:
        async with proxying(tenant.gateway_url) as proxy:
            proxy.drop_next.add(CREATE)

            def create() -> tuple[str, list[str]]:
                with BillingClient(proxy.url, tenant.app_name, tenant.secret) as client:
                    payment = client.payments.create(amount=5000, currency="USD", order_id="flaky-2")
                    return payment.id, [p.id for p in client.payments.list(order_id="flaky-2")]

            payment_id, listed = await asyncio.to_thread(create)
        assert listed == [payment_id]
        assert [t.status for t in proxy.of(*CREATE)] == [None, 201]

    async def test_a_dropped_refund_answer_refunds_once(self, tenant: Tenant) -> None:
        async with AsyncBillingClient(tenant.gateway_url, tenant.app_name, tenant.secret) as direct:
            payment = await direct.payments.create(amount=5000, currency="USD", order_id="flaky-3")
        from .support import pay_at_sandbox, wait_for_status

        await pay_at_sandbox(tenant, payment)
        async with (
            proxying(tenant.gateway_url) as proxy,
            AsyncBillingClient(proxy.url, tenant.app_name, tenant.secret) as client,
        ):
            await wait_for_status(client, payment.id, "SUCCEEDED")
            proxy.drop_next.add(("POST", f"/v1/payments/{payment.id}/refunds"))
            refund = await client.refunds.create(payment.id, amount=1000)
            refunds = [r.id async for r in client.refunds.list(payment.id)]
        assert refunds == [refund.id]

    async def test_the_callers_own_key_replays_the_first_answer(self, client: AsyncBillingClient) -> None:
        first = await client.payments.create(amount=5000, currency="USD", order_id="o-1", idempotency_key="order-1")
        again = await client.payments.create(amount=5000, currency="USD", order_id="o-1", idempotency_key="order-1")
        assert again.id == first.id
