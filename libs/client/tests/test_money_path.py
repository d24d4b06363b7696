"""The money path through the client against the embedded platform: create → the payer pays at the
sandbox → the webhook received and verified with ``billing_client.webhooks.verify`` → SUCCEEDED →
refund → lists paged across several pages → the event log backfilled with ``after``."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from billing_client import AsyncBillingClient, BillingClient, Event, PaymentStatus, webhooks

from .support import Tenant, pay_at_sandbox, wait_for_status

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def _verified(receiver: Any, secret: str, event_type: str, timeout: float = 30) -> Event:
    """The first webhook of ``event_type``, every one received so far verified with the helper."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = [webhooks.verify(body, headers, secret) for headers, body in receiver.got]
        found = [e for e in events if e.type == event_type]
        if found:
            return found[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {event_type} webhook: {receiver.types()}")


class TestMoneyPath:
    async def test_pay_refund_page_and_backfill(self, client: AsyncBillingClient, tenant: Tenant, receiver) -> None:  # type: ignore[no-untyped-def]
        endpoint = await client.webhook_endpoints.create(url=receiver.url, events=["*"], description="client e2e")
        assert endpoint.secret is not None and endpoint.secret.startswith("whsec_")
        assert (await client.webhook_endpoints.retrieve(endpoint.id)).secret is None

        payment = await client.payments.create(
            amount=5000,
            currency="USD",
            order_id="order-1",
            description="Two books",
            customer={"email": "payer@example.com", "name": "A Payer"},
            metadata={"cart": "42"},
            return_url="https://shop.example/ok",
        )
        assert (payment.status, payment.amount, payment.metadata) == (PaymentStatus.CREATED, 5000, {"cart": "42"})
        assert payment.customer is not None and payment.customer.email == "payer@example.com"
        await pay_at_sandbox(tenant, payment)

        succeeded = await _verified(receiver, endpoint.secret, "payment.succeeded")
        assert succeeded.payment is not None
        assert (succeeded.payment.id, succeeded.payment.status) == (payment.id, "SUCCEEDED")
        paid = await wait_for_status(client, payment.id, PaymentStatus.SUCCEEDED)
        assert (paid.status, paid.provider) == ("SUCCEEDED", "sandbox")

        refund = await client.refunds.create(payment.id, amount=2000, reason="requested_by_customer")
        assert (refund.status, refund.amount, refund.payment_id) == ("PENDING", 2000, payment.id)
        refunded = await _verified(receiver, endpoint.secret, "refund.succeeded")
        assert refunded.refund is not None and refunded.refund.id == refund.id
        assert (await client.refunds.retrieve(refund.id)).status == "SUCCEEDED"
        assert [r.id async for r in client.refunds.list(payment.id)] == [refund.id]
        partly = await wait_for_status(client, payment.id, PaymentStatus.PARTIALLY_REFUNDED)
        assert partly.amount_refunded == 2000

        # Four more payments: five in all, listed newest first two by two (three pages).
        others = [
            await client.payments.create(amount=1000 + i, currency="USD", order_id=f"order-{i}") for i in range(2, 6)
        ]
        pages = [page async for page in client.payments.list(limit=2).pages()]
        assert [len(p.data) for p in pages] == [2, 2, 1]
        listed = [p.id for page in pages for p in page.data]
        assert listed == [p.id for p in reversed([payment, *others])]
        assert [p.id async for p in client.payments.list(status="CREATED", limit=3)] == listed[:4]
        assert [p.id async for p in client.payments.list(order_id="order-1")] == [payment.id]

        # The event log, oldest first, paged with ``after`` one event at a time; resumable from any id.
        events = [e async for e in client.events.list(limit=1)]
        types = [e.type for e in events]
        assert types[:3] == ["payment.created", "payment.pending", "payment.succeeded"]
        assert {"refund.created", "refund.succeeded"} <= set(types)
        assert types.count("payment.created") == 5
        assert [e.id async for e in client.events.list(after=events[1].id, limit=2)] == [e.id for e in events[2:]]
        assert [e.id async for e in client.events.list(type="refund.succeeded")] == [refunded.id]

        deliveries = [d async for d in client.webhook_deliveries.list(endpoint_id=endpoint.id, limit=2)]
        assert {d.event_id for d in deliveries} >= {succeeded.id, refunded.id}
        detail = await client.webhook_deliveries.retrieve(deliveries[0].id)
        assert detail.attempts and detail.event is not None

    async def test_the_sync_client_takes_the_same_path(self, tenant: Tenant, receiver) -> None:  # type: ignore[no-untyped-def]
        def create() -> tuple[str, str]:
            with BillingClient(tenant.gateway_url, tenant.app_name, tenant.secret) as client:
                endpoint = client.webhook_endpoints.create(url=receiver.url)
                assert endpoint.secret is not None
                return endpoint.secret, client.payments.create(amount=5000, currency="EUR", order_id="o-1").id

        secret, payment_id = await asyncio.to_thread(create)
        with BillingClient(tenant.gateway_url, tenant.app_name, tenant.secret) as client:
            payment = await asyncio.to_thread(client.payments.retrieve, payment_id)
            await pay_at_sandbox(tenant, payment)
            event = await _verified(receiver, secret, "payment.succeeded")
            assert event.payment is not None and event.payment.id == payment_id
            refund = await asyncio.to_thread(lambda: client.refunds.create(payment_id))
            assert refund.amount == 5000
            events = await asyncio.to_thread(lambda: [e.type for e in client.events.list(limit=2)])
        assert events[:3] == ["payment.created", "payment.pending", "payment.succeeded"]

    async def test_endpoint_management(self, client: AsyncBillingClient, receiver) -> None:  # type: ignore[no-untyped-def]
        endpoint = await client.webhook_endpoints.create(url=receiver.url, events=["payment.succeeded"])
        updated = await client.webhook_endpoints.update(endpoint.id, events=["*"], description="all of them")
        assert (updated.events, updated.description) == (["*"], "all of them")
        cleared = await client.webhook_endpoints.update(endpoint.id, description=None)
        assert cleared.description is None and cleared.events == ["*"]
        rotated = await client.webhook_endpoints.rotate_secret(endpoint.id)
        assert rotated.secret is not None and rotated.secret != endpoint.secret
        sent = await client.webhook_endpoints.test(endpoint.id)
        assert sent.event_type == "webhook.test"
        test_event = await _verified(receiver, rotated.secret, "webhook.test")
        retried = await client.webhook_deliveries.retry(sent.id)
        assert retried.id == sent.id
        replay = await client.webhook_endpoints.replay(endpoint.id, since="2026-01-01T00:00:00Z", status="all")
        assert replay.endpoint_id == endpoint.id and replay.replayed >= 0
        assert [e.id async for e in client.webhook_endpoints.list()] == [endpoint.id]
        deleted = await client.webhook_endpoints.delete(endpoint.id)
        assert deleted.deleted and test_event.type == "webhook.test"
        assert [e.id async for e in client.webhook_endpoints.list()] == []
