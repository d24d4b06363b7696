"""A dispute of a paid payment reaches the tenant.

``TestDisputes`` (distributed mode): the test plays providers-svc's part, publishing
``provider.dispute.updated`` on the platform's RabbitMQ as its Stripe follower does; payments-svc applies
it, and the tenant sees the dispute on the payment, ``dispute.created`` and ``dispute.closed`` in its event
log, and the same two as webhooks at an endpoint that subscribed to them only, each verified with the
reference Standard Webhooks verifier.

``TestStripeDisputes`` (both modes, as tests/e2e/test_stripe.py): the whole way, through the gateway only.
A card payment at localstripe is paid; then Stripe's ``charge.dispute.created`` and
``charge.dispute.closed`` (``lost``; ``won``, its funds reinstated after) for its charge, signed with the
account's webhook secret as Stripe signs them, are POSTed to ``/billing/stripe``; the tenant hears
``dispute.created`` and ``dispute.closed``, the payment's ``dispute`` and ``amount_disputed`` change as
the payments-svc README "Disputes" says, ``/v1/events`` lists the two events, and a duplicate delivery of
any of Stripe's events changes nothing."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from billing_contracts.events import ProviderDispute, ProviderDisputeUpdatedV1
from billing_runtime.bus import Message
from billing_runtime.bus.rabbit import RabbitBus
from billing_runtime.testing import require_rabbitmq
from standardwebhooks.webhooks import Webhook

from .stripe_support import SignedEvent, StripeShop, deliver, pay_with_card, sign, stripe_event, stripe_shop

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


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


# The embedded mode's bus is inside its process: only the distributed one can be published to.
@pytest.mark.parametrize("platform", ["distributed"], indirect=True)
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


async def _charge_of(http: aiohttp.ClientSession, localstripe: str, shop: StripeShop, intent_id: str) -> str:
    """The id of the charge that paid ``intent_id``, as the account's Stripe holds it."""
    async with http.get(
        f"{localstripe}/v1/payment_intents/{intent_id}", headers={"Authorization": f"Bearer {shop.secret_key}"}
    ) as r:
        assert r.status == 200, await r.text()
        charge = (await r.json())["latest_charge"]
    return str(charge["id"] if isinstance(charge, dict) else charge)


def _dispute(
    dispute_id: str, charge_id: str, intent_id: str | None, status: str, opened: int, moves: list[int]
) -> dict[str, Any]:
    """Stripe's dispute object of the whole 50.00 USD charge; ``moves`` are its balance transactions'
    amounts (the withdrawal is negative, a reinstatement positive). Without ``intent_id`` it names only
    its charge, as an older API version does (providers-svc then finds the intent at Stripe)."""
    return {
        "id": dispute_id,
        "object": "dispute",
        "amount": 5000,
        "currency": "usd",
        "status": status,
        "reason": "fraudulent",
        "charge": charge_id,
        "payment_intent": intent_id,
        "created": opened,
        "livemode": False,
        "is_charge_refundable": False,
        "evidence_details": {"due_by": opened + 7 * 86400, "has_evidence": False, "submission_count": 0},
        "balance_transactions": [
            {"id": f"txn_{secrets.token_hex(8)}", "object": "balance_transaction", "amount": amount, "currency": "usd"}
            for amount in moves
        ],
        "metadata": {},
    }


def _at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _when(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


class TestStripeDisputes:
    @pytest.mark.parametrize("outcome", ["lost", "won"])
    async def test_stripes_dispute_events_reach_the_tenant_once_and_change_the_payment(
        self, platform: Any, http: aiohttp.ClientSession, receiver: Any, localstripe: str, outcome: str
    ) -> None:
        shop = await stripe_shop(http, platform, receiver, localstripe, events=("dispute.created", "dispute.closed"))
        payment = await pay_with_card(http, platform, shop.auth)
        assert (payment["dispute"], payment["amount_disputed"]) == (None, 0)
        intent_id = payment["provider_reference"]
        charge_id = await _charge_of(http, localstripe, shop, intent_id)
        # The lost dispute names its intent as today's API does; the won one only its charge.
        named_intent = intent_id if outcome == "lost" else None
        dispute_id = f"dp_{secrets.token_hex(8)}"
        opened = int(time.time())

        # Stripe opens the dispute and takes the 50.00 back at once (its balance transaction).
        created = sign(
            stripe_event(
                "charge.dispute.created",
                _dispute(dispute_id, charge_id, named_intent, "needs_response", opened, [-5000]),
                created=opened,
            ),
            shop.webhook_secret,
        )
        assert await deliver(http, platform, created) == 200
        created_hook = await receiver.wait("dispute.created")

        # It closes later: lost, the money stays with the payer; won, the money comes back, reported at
        # the same second as charge.dispute.funds_reinstated after charge.dispute.closed.
        closed_at = max(int(time.time()), opened + 1)
        closing = _dispute(dispute_id, charge_id, named_intent, outcome, opened, [-5000])
        closed = sign(stripe_event("charge.dispute.closed", closing, created=closed_at), shop.webhook_secret)
        assert await deliver(http, platform, closed) == 200
        closed_hook = await receiver.wait("dispute.closed")
        delivered: list[SignedEvent] = [created, closed]
        if outcome == "won":
            reinstated = sign(
                stripe_event(
                    "charge.dispute.funds_reinstated",
                    _dispute(dispute_id, charge_id, named_intent, "won", opened, [-5000, 5000]),
                    created=closed_at,
                ),
                shop.webhook_secret,
            )
            assert await deliver(http, platform, reinstated) == 200
            delivered.append(reinstated)
        settled_amount = 5000 if outcome == "lost" else 0
        settled_sequence = payment["sequence"] + (2 if outcome == "lost" else 3)
        deadline = time.monotonic() + 30
        while True:
            async with http.get(f"{platform.gateway_url}/v1/payments/{payment['id']}", headers=shop.auth) as r:
                assert r.status == 200, await r.text()
                settled = await r.json()
            if settled["sequence"] >= settled_sequence or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)

        # Every one of Stripe's events again. The same bytes and signature is a replay (Stripe signs each
        # attempt afresh), refused; Stripe's own retry, the event signed again later, is acknowledged.
        # Neither changes anything.
        for again in delivered:
            assert await deliver(http, platform, again) == 400
            first = int(again.signature.split(",")[0].removeprefix("t="))
            retry = sign(json.loads(again.body), shop.webhook_secret, first + 1)
            assert await deliver(http, platform, retry) == 200
        await asyncio.sleep(2)

        # The tenant heard of the dispute twice, verified as any Standard Webhooks receiver verifies.
        verifier = Webhook(shop.endpoint_secret)
        bodies = []
        for headers, body in receiver.got:
            lowered = {k.lower(): v for k, v in headers.items()}
            bodies.append(verifier.verify(body, lowered))
            assert lowered["webhook-id"] == json.loads(body)["id"]
        assert [b["type"] for b in bodies] == ["dispute.created", "dispute.closed"], receiver.types()
        assert [b["id"] for b in bodies] == [created_hook["id"], closed_hook["id"]]
        opened_dispute, closed_dispute = (b["data"]["dispute"] for b in bodies)
        opened_payment, closed_payment = (b["data"]["payment"] for b in bodies)

        # dispute.created: the first state, the 50.00 held back; the payment stays SUCCEEDED.
        assert opened_dispute["id"].startswith("dsp_")
        assert (opened_dispute["payment_id"], opened_dispute["status"], opened_dispute["reason"]) == (
            payment["id"],
            "needs_response",
            "fraudulent",
        )
        assert (opened_dispute["amount"], opened_dispute["currency"], opened_dispute["funds_withdrawn"]) == (
            5000,
            "USD",
            True,
        )
        assert _when(opened_dispute["created_at"]) == _at(opened)
        assert _when(opened_dispute["evidence_due_by"]) == _at(opened) + timedelta(days=7)
        assert opened_dispute["closed_at"] is None
        assert (opened_payment["status"], opened_payment["amount_disputed"], opened_payment["amount_refunded"]) == (
            "SUCCEEDED",
            5000,
            0,
        )
        assert opened_payment["dispute"] == opened_dispute
        assert opened_payment["sequence"] == payment["sequence"] + 1

        # dispute.closed: the same dispute with its outcome, closed at the closing event's time; the
        # funds are still withdrawn then (a won dispute's come back with the reinstatement).
        assert (closed_dispute["id"], closed_dispute["status"], closed_dispute["funds_withdrawn"]) == (
            opened_dispute["id"],
            outcome,
            True,
        )
        assert _when(closed_dispute["closed_at"]) == _at(closed_at)
        assert _when(closed_dispute["created_at"]) == _at(opened)
        assert (closed_payment["status"], closed_payment["amount_disputed"]) == ("SUCCEEDED", 5000)
        assert closed_payment["dispute"] == closed_dispute
        assert closed_payment["sequence"] == payment["sequence"] + 2

        # The payment as the tenant reads it: lost, the 50.00 disputed for good; won, back to 0 once the
        # funds were reinstated (a change without an event, one more step of sequence).
        assert (settled["status"], settled["amount_refunded"]) == ("SUCCEEDED", 0)
        assert (settled["amount_disputed"], settled["sequence"]) == (settled_amount, settled_sequence)
        if outcome == "lost":
            assert settled["dispute"] == closed_dispute
        else:
            assert settled["dispute"] == {**closed_dispute, "funds_withdrawn": False}
        # The duplicates changed nothing.
        async with http.get(f"{platform.gateway_url}/v1/payments/{payment['id']}", headers=shop.auth) as r:
            assert await r.json() == settled

        # The tenant's event log holds each event once.
        for type_, hook in (("dispute.created", created_hook), ("dispute.closed", closed_hook)):
            async with http.get(f"{platform.gateway_url}/v1/events", params={"type": type_}, headers=shop.auth) as r:
                assert r.status == 200, await r.text()
                logged = (await r.json())["data"]
            assert [e["id"] for e in logged] == [hook["id"]]
            assert logged[0]["data"] == hook["data"]

        # The dispute naming only its charge was found through Stripe: providers-svc asked for the charge
        # (once per delivery it applied; the duplicates were stopped before that).
        async with http.get(f"{localstripe}/_config/requests") as r:
            asked = [q for q in await r.json() if q["method"] == "GET" and q["path"] == f"/v1/charges/{charge_id}"]
        assert len(asked) == (0 if outcome == "lost" else len(delivered))
