"""A dispute of a paid payment reaches the tenant (distributed mode): the test plays providers-svc's
part, publishing ``provider.dispute.updated`` on the platform's RabbitMQ as its Stripe follower does;
payments-svc applies it, and the tenant sees the dispute on the payment, ``dispute.created`` and
``dispute.closed`` in its event log, and the same two as webhooks at an endpoint that subscribed to
them only, each verified with the reference Standard Webhooks verifier."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from billing_contracts.events import ProviderDispute, ProviderDisputeUpdatedV1
from billing_runtime.bus import Message
from billing_runtime.bus.rabbit import RabbitBus
from billing_runtime.testing import require_rabbitmq
from standardwebhooks.webhooks import Webhook

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def platform(distributed_platform):  # type: ignore[no-untyped-def]
    # The embedded mode's bus is inside its process: only the distributed one can be published to.
    return distributed_platform


async def _pay(http, platform, payment: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    async with http.post(
        f"{platform.checkout_url}/c/{payment['checkout_token']}/pay",
        data={"provider": "sandbox"},
        allow_redirects=False,
    ) as r:
        provider_page = r.headers["Location"]
    async with http.post(provider_page, data={"outcome": "succeed"}, allow_redirects=False) as r:
        assert r.status == 303


async def _tenant_id(http, platform, app_name: str) -> str:  # type: ignore[no-untyped-def]
    async with http.get(
        f"{platform.gateway_url}/admin/tenants", headers={"Authorization": f"Bearer {platform.admin_token}"}
    ) as r:
        assert r.status == 200, await r.text()
        body = await r.json()
    tenants = body["data"] if isinstance(body, dict) else body
    return next(t["id"] for t in tenants if t["app_name"] == app_name)  # type: ignore[no-any-return]


def _state(tenant_id: str, payment: dict[str, Any], status: str, at: int, withdrawn: bool) -> Message:
    opened = datetime.now(UTC).replace(microsecond=0)
    event = ProviderDisputeUpdatedV1(
        tenant_id=tenant_id,
        correlation_id=payment["id"],
        data=ProviderDispute(
            payment_id=payment["id"],
            provider="sandbox",
            provider_transaction_id="ptx_e2e",
            provider_dispute_id=f"dp_{payment['id']}",
            status=status,
            reason="fraudulent",
            amount=payment["amount"],
            currency=payment["currency"],
            funds_withdrawn=withdrawn,
            evidence_due_by=opened + timedelta(days=7),
            provider_created_at=opened,
            provider_updated_at=opened + timedelta(seconds=at),
        ),
    )
    return Message(f"providers.{event.event_type}.v1", event.model_dump_json().encode(), event.event_id)


class TestDisputes:
    async def test_a_lost_dispute_reaches_the_tenant_as_verified_webhooks_and_in_its_log(
        self, platform, new_tenant, http, receiver
    ) -> None:
        tenant = await new_tenant()
        async with http.post(
            f"{platform.gateway_url}/v1/webhook-endpoints",
            json={"url": receiver.url, "events": ["dispute.created", "dispute.closed"]},
            headers=tenant.auth,
        ) as r:
            assert r.status == 201, await r.text()
            secret = (await r.json())["secret"]
        payment = await tenant.create_payment("dispute-1")
        await _pay(http, platform, payment)
        paid = await tenant.wait_for_status(payment["id"], "SUCCEEDED")
        assert (paid["status"], paid["dispute"], paid["amount_disputed"]) == ("SUCCEEDED", None, 0)

        tenant_id = await _tenant_id(http, platform, tenant.app_name)
        publisher = RabbitBus(require_rabbitmq())
        await publisher.start()
        try:
            opened = _state(tenant_id, payment, "needs_response", 1, True)
            await publisher.publish(opened)
            await publisher.publish(opened)  # a redelivery: applied once
            await receiver.wait("dispute.created")
            await publisher.publish(_state(tenant_id, payment, "lost", 9, True))
            await receiver.wait("dispute.closed")
        finally:
            await publisher.close()

        verifier = Webhook(secret)
        bodies = []
        for headers, body in receiver.got:
            lowered = {k.lower(): v for k, v in headers.items()}
            bodies.append(verifier.verify(body, lowered))
            assert lowered["webhook-id"] == json.loads(body)["id"]
        assert [b["type"] for b in bodies] == ["dispute.created", "dispute.closed"]
        created, closed = bodies
        assert created["data"]["dispute"]["status"] == "needs_response"
        assert (closed["data"]["dispute"]["status"], closed["data"]["payment"]["amount_disputed"]) == ("lost", 5000)
        assert closed["data"]["payment"]["sequence"] > created["data"]["payment"]["sequence"] > paid["sequence"]

        after = await tenant.payment(payment["id"])
        assert after["status"] == "SUCCEEDED"
        assert after["dispute"] == closed["data"]["dispute"]
        assert after["sequence"] == closed["data"]["payment"]["sequence"]
        log = await tenant.events(type="dispute.closed")
        assert [e["id"] for e in log] == [closed["id"]]
        assert [e["id"] for e in await tenant.events(type="dispute.created")] == [created["id"]]
