"""``refund.*`` (published by payments-svc, issue 13) reaches tenants' endpoints with no dispatcher code of
its own: bound from the contracts, filtered by type, delivered signed with ``data.refund`` and
``data.payment``."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from billing_contracts.events import RefundSucceededV1


def _refund_succeeded(tenant: str = "ten_a") -> RefundSucceededV1:
    now = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
    payment = {
        "id": "pay_1",
        "status": "PARTIALLY_REFUNDED",
        "amount": 5000,
        "amount_refunded": 2000,
        "currency": "USD",
        "order_id": "order-1",
        "sequence": 4,
        "created_at": now,
        "updated_at": now,
        "expires_at": now,
    }
    refund = {
        "id": "rfnd_1",
        "payment_id": "pay_1",
        "amount": 2000,
        "currency": "USD",
        "status": "SUCCEEDED",
        "sequence": 2,
        "created_at": now,
        "updated_at": now,
    }
    return RefundSucceededV1(tenant_id=tenant, data={"refund": refund, "payment": payment})


class TestRefundEvents:
    async def test_refund_succeeded_fans_out_to_the_endpoints_that_take_it(
        self, receiver, create_endpoint, bus, as_message, deliveries_of, wait_status, count
    ) -> None:
        subscribed = await receiver()
        every = await receiver()
        payments_only = await receiver()
        await create_endpoint(subscribed, events=["refund.succeeded"])
        await create_endpoint(every)
        await create_endpoint(payments_only, events=["payment.succeeded", "refund.created"])
        event = _refund_succeeded()
        message = as_message(event)
        assert message.routing_key == "payments.refund.succeeded.v1"
        await bus.publish(message)

        rows = await deliveries_of()
        assert len(rows) == 2
        for row in rows:
            await wait_status(row["id"], "succeeded")
        assert subscribed.ids() == every.ids() == [event.event_id]
        assert payments_only.hits == []
        [hit] = subscribed.hits
        assert hit.verified
        body = json.loads(hit.body)
        assert (body["id"], body["type"]) == (event.event_id, "refund.succeeded")
        assert body["data"] == event.model_dump(mode="json")["data"]
        assert (body["data"]["refund"]["sequence"], body["data"]["payment"]["sequence"]) == (2, 4)
        assert await count("webhook_events") == 1
