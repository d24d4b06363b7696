"""``POST /billing/stripe`` with hand-signed events: bad input changes nothing, duplicates and
out-of-order deliveries move money once and never back, disputes and refunds, Connect routing, and the
followers run in the webhook's unit of work."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import pytest
from providers_svc.adapters.stripe.webhooks import signature_header
from providers_svc.db.stripe import StripeIntentRow
from providers_svc.domain.stripe_events import VerifiedStripeEvent
from providers_svc.services.uow import ProvidersUnitOfWork
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from .conftest import TENANT, ShopFactory, StripeShop, new_webhook_secret, stripe_event

pytestmark = pytest.mark.postgres


def _outbox(rows: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(row["body"]) for row in rows]


async def _txn(db_read: Any, txn_id: str) -> Any:
    [txn] = [t for t in await db_read("transactions") if t["id"] == txn_id]
    return txn


async def _intent(shop: StripeShop, intent_id: str) -> dict[str, Any]:
    return await shop.localstripe.call("GET", f"/v1/payment_intents/{intent_id}", shop.secret_key)


def _pi(started: dict[str, Any], status: str, **fields: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": started["provider_reference"],
        "object": "payment_intent",
        "status": status,
        "amount": 5000,
        "currency": "usd",
        "metadata": {"transaction_id": started["provider_transaction_id"]},
    }
    obj.update(fields)
    return obj


async def _nothing_recorded(db_read: Any) -> None:
    assert await db_read("events") == []
    assert await db_read("outbox") == []


class TestBadInput:
    async def test_a_forged_signature_is_refused(self, shop: StripeShop, db_read: Any) -> None:
        started = await shop.start()
        resp = await shop.send(
            stripe_event("payment_intent.succeeded", _pi(started, "succeeded")), secret=new_webhook_secret()
        )
        assert resp.status == 400
        assert await resp.json() == {"error": "invalid_signature"}
        await _nothing_recorded(db_read)
        assert (await _txn(db_read, started["provider_transaction_id"]))["status"] == "pending"

    async def test_a_stale_signature_is_refused(self, shop: StripeShop, db_read: Any) -> None:
        started = await shop.start()
        event = stripe_event("payment_intent.succeeded", _pi(started, "succeeded"))
        resp = await shop.send(event, timestamp=int(time.time()) - 301)
        assert (resp.status, await resp.json()) == (400, {"error": "invalid_signature"})
        await _nothing_recorded(db_read)

    async def test_an_unsigned_event_is_refused(self, shop: StripeShop, db_read: Any) -> None:
        body = json.dumps(stripe_event("payment_intent.succeeded", {"id": "pi_x", "object": "payment_intent"}))
        resp = await shop.client.post("/billing/stripe", data=body, headers={"Content-Type": "application/json"})
        assert (resp.status, await resp.json()) == (400, {"error": "missing_signature"})
        await _nothing_recorded(db_read)

    async def test_one_good_v1_among_several_is_enough(self, shop: StripeShop, db_read: Any) -> None:
        """During a rotation Stripe signs with both secrets."""
        started = await shop.start()
        body = json.dumps(stripe_event("payment_intent.processing", _pi(started, "processing")))
        header = signature_header(body, shop.webhook_secret)
        t, good = header.split(",")
        bad = signature_header(body, new_webhook_secret(), int(t[2:])).split(",")[1]
        resp = await shop.client.post(
            "/billing/stripe", data=body, headers={"Stripe-Signature": f"{t},{bad},{good},v0=abc"}
        )
        assert resp.status == 200, await resp.text()
        [event] = await db_read("events")
        assert event["result"] == "pending"

    @pytest.mark.parametrize(
        "body",
        [b"not json", b"[]", b"\\xff\\xfe", json.dumps({"id": "evt_1", "type": "x"}).encode(), b'{"id": 1}'],
    )
    async def test_a_malformed_body_is_a_400(self, shop: StripeShop, db_read: Any, body: bytes) -> None:
        try:
            header = signature_header(body.decode(), shop.webhook_secret)
        except UnicodeDecodeError:
            header = "t=1,v1=00"
        resp = await shop.client.post("/billing/stripe", data=body, headers={"Stripe-Signature": header})
        assert resp.status == 400
        assert (await resp.json())["error"] in ("invalid_payload", "invalid_signature")
        await _nothing_recorded(db_read)

    async def test_signed_oddities_are_a_400_or_nothing_never_a_500(self, shop: StripeShop, db_read: Any) -> None:
        started = await shop.start()
        nested = '{"id": "evt_deep", "type": "x", "created": 1, "livemode": false, "data": {"object": ' + "[" * 5000
        nested += "]" * 5000 + "}}"
        for body in (
            nested,
            json.dumps(stripe_event("customer.created", {"id": "cus_1"}, event_id="evt_\x00nul")),
            json.dumps(stripe_event("customer.created", {"id": "cus_1"}, account="acct_\x00")),
        ):
            resp = await shop.client.post(
                "/billing/stripe", data=body, headers={"Stripe-Signature": signature_header(body, shop.webhook_secret)}
            )
            assert (resp.status, await resp.json()) == (400, {"error": "invalid_payload"})
        await _nothing_recorded(db_read)
        # An id of ours with a NUL names no transaction: recorded, nothing moves.
        bad = _pi(started, "succeeded", metadata={"transaction_id": "ptx_\x00"}, id="pi_\x00")
        assert (await shop.send(stripe_event("payment_intent.succeeded", bad))).status == 200
        [row] = await db_read("events")
        assert row["result"] == "unknown_transaction"

    async def test_a_huge_body_is_a_413(self, shop: StripeShop, db_read: Any) -> None:
        body = json.dumps({"padding": "x" * (600 * 1024)})
        resp = await shop.client.post(
            "/billing/stripe", data=body, headers={"Stripe-Signature": signature_header(body, shop.webhook_secret)}
        )
        assert resp.status == 413
        await _nothing_recorded(db_read)

    async def test_a_live_event_under_a_test_account_is_refused(self, shop: StripeShop, db_read: Any) -> None:
        started = await shop.start()
        resp = await shop.send(stripe_event("payment_intent.succeeded", _pi(started, "succeeded"), livemode=True))
        assert (resp.status, await resp.json()) == (400, {"error": "livemode_mismatch"})
        await _nothing_recorded(db_read)
        metrics = await (await shop.client.get("/metrics")).text()
        assert 'provider_callbacks_rejected_total{provider="stripe",reason="livemode_mismatch"} 1.0' in metrics

    async def test_secrets_never_show(self, shop: StripeShop, caplog: pytest.LogCaptureFixture) -> None:
        resp = await shop.send(stripe_event("payment_intent.succeeded", {"id": "pi_x"}), secret=new_webhook_secret())
        text = await resp.text()
        for secret in (shop.webhook_secret, shop.secret_key):
            assert secret not in text
            assert secret not in caplog.text


class TestDeliveries:
    async def test_a_duplicate_moves_money_once(self, shop: StripeShop, db_read: Any) -> None:
        started = await shop.start()
        event = stripe_event("payment_intent.succeeded", _pi(started, "succeeded"))
        for _ in range(3):
            assert (await shop.send(event)).status == 200
        assert [e["event_type"] for e in _outbox(await db_read("outbox"))] == ["provider.payment.succeeded"]
        [row] = await db_read("events")
        assert row["result"] == "applied"

    async def test_an_unknown_type_is_recorded_and_acknowledged(self, shop: StripeShop, db_read: Any) -> None:
        resp = await shop.send(stripe_event("customer.created", {"id": "cus_1", "object": "customer"}))
        assert resp.status == 200
        [row] = await db_read("events")
        assert (row["event_type"], row["result"]) == ("customer.created", "recorded")

    async def test_a_declined_try_then_a_success_on_the_same_intent(self, shop: StripeShop, db_read: Any) -> None:
        started = await shop.start()
        now = int(time.time())
        error = {"code": "card_declined", "decline_code": "generic_decline", "message": "Declined"}
        failed = _pi(started, "requires_payment_method", last_payment_error=error)
        await shop.send(stripe_event("payment_intent.payment_failed", failed, created=now - 10))
        assert (await _txn(db_read, started["provider_transaction_id"]))["status"] == "pending"
        await shop.send(stripe_event("payment_intent.succeeded", _pi(started, "succeeded"), created=now))
        txn = await _txn(db_read, started["provider_transaction_id"])
        assert (txn["status"], txn["failure_code"]) == ("succeeded", None)

    async def test_a_cancelled_intent_fails_with_the_last_card_error(self, shop: StripeShop, db_read: Any) -> None:
        started = await shop.start()
        now = int(time.time())
        error = {"code": "card_declined", "decline_code": "stolen_card", "message": "Stolen"}
        failed = _pi(started, "requires_payment_method", last_payment_error=error)
        await shop.send(stripe_event("payment_intent.payment_failed", failed, created=now - 10))
        cancelled = _pi(started, "canceled", cancellation_reason="abandoned")
        await shop.send(stripe_event("payment_intent.canceled", cancelled, created=now))
        txn = await _txn(db_read, started["provider_transaction_id"])
        assert (txn["status"], txn["failure_code"], txn["failure_message"]) == (
            "failed",
            "stripe_stolen_card",
            "Stolen",
        )

    async def test_an_older_event_never_overwrites_a_newer_state(
        self, shop: StripeShop, db_read: Any, engine: AsyncEngine
    ) -> None:
        """3-D Secure asked (newer) arrives before the payer's earlier decline (older): the stored state
        stays the intent's real one (re-fetched from Stripe), and the old error is not taken as news."""
        started = await shop.start()
        assert (await shop.pay(started, "3ds_pending")).status == 303
        intent = await _intent(shop, started["provider_reference"])
        assert intent["status"] == "requires_action"
        now = int(time.time())
        await shop.send(stripe_event("payment_intent.requires_action", intent, created=now))
        error = {"code": "card_declined", "message": "Declined earlier"}
        older = _pi(started, "requires_payment_method", last_payment_error=error)
        assert (await shop.send(stripe_event("payment_intent.payment_failed", older, created=now - 30))).status == 200
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    select(StripeIntentRow.__table__).where(
                        StripeIntentRow.transaction_id == started["provider_transaction_id"]
                    )
                )
            ).one()
        assert row.status == "requires_action"
        assert row.failure_code is None
        assert row.status_at.timestamp() == now
        assert (await _txn(db_read, started["provider_transaction_id"]))["status"] == "pending"

    async def test_a_late_cancel_never_undoes_a_success(self, shop: StripeShop, db_read: Any) -> None:
        started = await shop.start()
        assert (await shop.pay(started, "visa")).status == 303
        now = int(time.time())
        await shop.send(stripe_event("payment_intent.succeeded", _pi(started, "succeeded"), created=now))
        # An older picture that says "canceled": the intent as Stripe has it now (re-fetched) decides.
        await shop.send(stripe_event("payment_intent.canceled", _pi(started, "canceled"), created=now - 5))
        txn = await _txn(db_read, started["provider_transaction_id"])
        assert txn["status"] == "succeeded"
        assert [e["event_type"] for e in _outbox(await db_read("outbox"))] == ["provider.payment.succeeded"]
        assert await db_read("anomalies") == []

    async def test_another_amount_is_an_anomaly_not_a_payment(self, shop: StripeShop, db_read: Any) -> None:
        started = await shop.start()
        await shop.send(stripe_event("payment_intent.succeeded", _pi(started, "succeeded", amount=4000)))
        assert (await _txn(db_read, started["provider_transaction_id"]))["status"] == "pending"
        [anomaly] = await db_read("anomalies")
        assert anomaly["kind"] == "amount_mismatch"

    async def test_an_event_of_another_accounts_transaction_moves_nothing(self, shop: StripeShop, db_read: Any) -> None:
        """Another Stripe account (its own secret) names our transaction: not its to move."""
        started = await shop.start()
        other_secret = new_webhook_secret()
        await shop.add_account(webhook_secret=other_secret)
        event = stripe_event("payment_intent.succeeded", _pi(started, "succeeded"))
        assert (await shop.send(event, secret=other_secret)).status == 200
        [row] = await db_read("events")
        assert row["result"] == "unknown_transaction"
        assert (await _txn(db_read, started["provider_transaction_id"]))["status"] == "pending"
        assert await db_read("outbox") == []


def _dispute(intent_id: str | None, **fields: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": f"dp_{secrets.token_hex(6)}",
        "object": "dispute",
        "amount": 5000,
        "currency": "usd",
        "status": "needs_response",
        "reason": "fraudulent",
        "payment_intent": intent_id,
        "charge": None,
        "created": int(time.time()) - 100,
        "evidence_details": {"due_by": int(time.time()) + 86400},
        "balance_transactions": [],
    }
    obj.update(fields)
    return obj


class TestDisputes:
    async def test_a_dispute_of_our_payment_is_published(self, shop: StripeShop, db_read: Any) -> None:
        started = await shop.start()
        await shop.send(stripe_event("payment_intent.succeeded", _pi(started, "succeeded")))
        dispute = _dispute(started["provider_reference"])
        created = int(time.time())
        assert (await shop.send(stripe_event("charge.dispute.created", dispute, created=created))).status == 200
        withdrawn = {**dispute, "balance_transactions": [{"amount": -5000}]}
        await shop.send(stripe_event("charge.dispute.funds_withdrawn", withdrawn, created=created + 1))
        published = [e for e in _outbox(await db_read("outbox")) if e["event_type"] == "provider.dispute.updated"]
        assert len(published) == 2
        first, second = (p["data"] for p in published)
        assert first["payment_id"] == started["payment_id"]
        assert first["provider_transaction_id"] == started["provider_transaction_id"]
        assert (first["provider_dispute_id"], first["status"], first["reason"]) == (
            dispute["id"],
            "needs_response",
            "fraudulent",
        )
        assert (first["amount"], first["currency"], first["funds_withdrawn"]) == (5000, "USD", False)
        assert second["funds_withdrawn"] is True
        assert second["provider_updated_at"] > first["provider_updated_at"]
        assert {p["tenant_id"] for p in published} == {TENANT}

    async def test_a_dispute_naming_only_its_charge_is_found_through_stripe(
        self, shop: StripeShop, db_read: Any
    ) -> None:
        started = await shop.start()
        assert (await shop.pay(started, "visa")).status == 303
        await shop.send(stripe_event("payment_intent.succeeded", await _intent(shop, started["provider_reference"])))
        intent = await _intent(shop, started["provider_reference"])
        charge = intent["latest_charge"]
        charge_id = charge["id"] if isinstance(charge, dict) else charge
        await shop.send(stripe_event("charge.dispute.closed", _dispute(None, charge=charge_id, status="won")))
        [published] = [e for e in _outbox(await db_read("outbox")) if e["event_type"] == "provider.dispute.updated"]
        assert (published["data"]["status"], published["data"]["payment_id"]) == ("won", started["payment_id"])

    async def test_a_dispute_of_a_charge_not_ours_is_only_recorded(self, shop: StripeShop, db_read: Any) -> None:
        assert (await shop.send(stripe_event("charge.dispute.created", _dispute("pi_notours")))).status == 200
        [row] = await db_read("events")
        assert row["result"] == "unknown_transaction"
        assert await db_read("outbox") == []


class TestRefundEvents:
    @pytest.mark.parametrize("type_", ["refund.created", "refund.updated", "refund.failed", "charge.refunded"])
    async def test_refund_events_are_recorded_against_the_payment(
        self, shop: StripeShop, db_read: Any, type_: str
    ) -> None:
        started = await shop.start()
        obj = {"id": "re_1", "object": "refund", "payment_intent": started["provider_reference"], "amount": 100}
        assert (await shop.send(stripe_event(type_, obj))).status == 200
        [row] = await db_read("events")
        assert (row["result"], row["transaction_id"]) == ("refund_recorded", started["provider_transaction_id"])
        assert await db_read("outbox") == []


class TestConnect:
    async def test_events_are_routed_by_their_connected_account(self, shop: StripeShop, db_read: Any) -> None:
        connected, _ = await shop.add_account(connected_account="acct_1Shop")
        seen: list[str] = []

        # The platform's own event (no ``account``) belongs to the account without a connected account.
        await shop.send(stripe_event("customer.created", {"id": "cus_1", "object": "customer"}))
        await shop.send(stripe_event("customer.created", {"id": "cus_2", "object": "customer"}, account="acct_1Shop"))
        resp = await shop.send(stripe_event("customer.created", {"id": "cus_3"}, account="acct_1Nobody"))
        assert resp.status == 200
        rows = sorted(await db_read("events"), key=lambda r: r["received_at"])
        seen = [r["result"] for r in rows]
        assert seen == ["recorded", "recorded", "unknown_account"]
        metrics = await (await shop.client.get("/metrics")).text()
        assert 'provider_callbacks_total{provider="stripe",result="unknown_account"} 1.0' in metrics
        del connected

    async def test_a_connected_accounts_event_names_its_account_to_the_followers(
        self, stripe_shop_factory: ShopFactory
    ) -> None:
        handed: list[VerifiedStripeEvent] = []

        async def follower(_unit: ProvidersUnitOfWork, event: VerifiedStripeEvent) -> None:
            handed.append(event)

        shop = await stripe_shop_factory(stripe_followers=[follower])
        connected, _ = await shop.add_account(connected_account="acct_1Shop")
        created = int(time.time())
        event = stripe_event("invoice.paid", {"id": "in_1", "object": "invoice"}, account="acct_1Shop", created=created)
        await shop.send(event)
        await shop.send(stripe_event("invoice.paid", {"id": "in_2", "object": "invoice"}))
        first, second = handed
        assert (first.account_id, first.stripe_account, first.type) == (connected, "acct_1Shop", "invoice.paid")
        assert first.tenant_ids == ()  # the connected account is assigned to no tenant yet
        assert first.object == {"id": "in_1", "object": "invoice"}
        assert first.object_type == "invoice"
        assert first.created.timestamp() == created
        assert first.event_id == event["id"]
        assert (second.account_id, second.stripe_account, second.tenant_ids) == (shop.account_id, None, (TENANT,))


class TestFollowers:
    async def test_a_failing_follower_records_nothing_and_the_retry_applies_once(
        self, stripe_shop_factory: ShopFactory, db_read: Any
    ) -> None:
        calls: list[str] = []

        async def flaky(_unit: ProvidersUnitOfWork, event: VerifiedStripeEvent) -> None:
            calls.append(event.event_id)
            if len(calls) == 1:
                raise RuntimeError("a follower's bug")

        shop = await stripe_shop_factory(stripe_followers=[flaky])
        started = await shop.start()
        event = stripe_event("payment_intent.succeeded", _pi(started, "succeeded"))
        assert (await shop.send(event)).status == 500
        await _nothing_recorded(db_read)
        assert (await _txn(db_read, started["provider_transaction_id"]))["status"] == "pending"
        assert (await shop.send(event)).status == 200
        assert (await shop.send(event)).status == 200
        assert calls == [event["id"], event["id"]]
        assert [e["event_type"] for e in _outbox(await db_read("outbox"))] == ["provider.payment.succeeded"]


class TestPayerPage:
    async def test_a_wrong_token_is_a_404(self, shop: StripeShop) -> None:
        started = await shop.start()
        resp = await shop.client.get(f"/pay/stripe/{started['provider_transaction_id']}/forged")
        assert resp.status == 404
        assert started["provider_reference"] not in await resp.text()

    async def test_the_test_card_page_keeps_the_security_headers(self, shop: StripeShop) -> None:
        started = await shop.start()
        path = "/" + started["redirect_url"].split("://", 1)[1].split("/", 1)[1]
        resp = await shop.client.get(path)
        assert resp.status == 200
        assert "4000 0025 0000 3155" in await resp.text()
        assert resp.headers["Cache-Control"] == "no-store"
        assert resp.headers["Referrer-Policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]

    async def test_a_real_account_gets_stripe_elements(self, shop: StripeShop, internal_headers: Any) -> None:
        """A production account (here at the fake, so nothing leaves loopback): Elements with its key."""
        account, _ = await shop.add_account(
            environment="production", publishable_key="pk_live_abc", flow="payment_intent"
        )
        live = "ten_cccccccccccccccc"
        resp = await shop.client.put(
            f"/admin/tenants/{live}/provider-accounts/stripe",
            json={"provider_account_id": account},
            headers=internal_headers(live, issuer="gateway", livemode=True),
        )
        assert resp.status == 200, await resp.text()
        body = shop.payment_request(provider="stripe", currency="USD", amount=5000)
        resp = await shop.client.post(
            "/internal/payments/start", json=body, headers=internal_headers(live, livemode=True)
        )
        assert resp.status == 200, await resp.text()
        started = await resp.json()
        path = "/" + started["redirect_url"].split("://", 1)[1].split("/", 1)[1]
        page = await shop.client.get(path)
        html = await page.text()
        assert 'src="https://js.stripe.com/v3/"' in html
        assert 'data-key="pk_live_abc"' in html
        intent = await _intent(shop, started["provider_reference"])
        assert f'data-secret="{intent["client_secret"]}"' in html
        csp = page.headers["Content-Security-Policy"]
        assert "script-src https://js.stripe.com 'nonce-" in csp and "connect-src https://api.stripe.com" in csp
        assert "4242" not in html
        # Test cards are refused for it.
        resp = await shop.client.post(path, data={"card": "visa"})
        assert resp.status == 403
