"""``POST /billing/stripe`` refuses bad input (forged, stale, unsigned, replayed, malformed, huge, the
wrong mode) and changes nothing; one good ``v1`` among several is enough; secrets never show."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from providers_svc.adapters.stripe.webhooks import signature_header
from providers_svc.db.stripe_objects import StripeObjectRow
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from .conftest import StripeShop, new_webhook_secret, stripe_event
from .helpers import intent_object, nothing_recorded, outbox_events, transaction

pytestmark = pytest.mark.postgres


class TestBadInput:
    async def test_a_forged_signature_is_refused(self, shop: StripeShop, db_read: Any) -> None:
        started = await shop.start()
        resp = await shop.send(
            stripe_event("payment_intent.succeeded", intent_object(started, "succeeded")), secret=new_webhook_secret()
        )
        assert resp.status == 400
        assert await resp.json() == {"error": "invalid_signature"}
        await nothing_recorded(db_read)
        assert (await transaction(db_read, started["provider_transaction_id"]))["status"] == "pending"

    async def test_a_stale_signature_is_refused(self, shop: StripeShop, db_read: Any) -> None:
        started = await shop.start()
        event = stripe_event("payment_intent.succeeded", intent_object(started, "succeeded"))
        resp = await shop.send(event, timestamp=int(time.time()) - 301)
        assert (resp.status, await resp.json()) == (400, {"error": "invalid_signature"})
        await nothing_recorded(db_read)

    async def test_an_unsigned_event_is_refused(self, shop: StripeShop, db_read: Any) -> None:
        body = json.dumps(stripe_event("payment_intent.succeeded", {"id": "pi_x", "object": "payment_intent"}))
        resp = await shop.client.post("/billing/stripe", data=body, headers={"Content-Type": "application/json"})
        assert (resp.status, await resp.json()) == (400, {"error": "missing_signature"})
        await nothing_recorded(db_read)

    @pytest.mark.parametrize("header", ["t=1,v1=\u00e9", "t=\u0661\u0662,v1=abc"])
    async def test_a_signature_header_that_is_not_ascii_is_refused(
        self, shop: StripeShop, db_read: Any, header: str
    ) -> None:
        body = json.dumps(stripe_event("payment_intent.succeeded", {"id": "pi_x", "object": "payment_intent"}))
        resp = await shop.client.post(
            "/billing/stripe", data=body, headers={"Stripe-Signature": header.encode("utf-8").decode("latin-1")}
        )
        assert (resp.status, await resp.json()) == (400, {"error": "invalid_signature"})
        await nothing_recorded(db_read)

    async def test_one_good_v1_among_several_is_enough(self, shop: StripeShop, db_read: Any) -> None:
        """During a rotation Stripe signs with both secrets."""
        started = await shop.start()
        body = json.dumps(stripe_event("payment_intent.processing", intent_object(started, "processing")))
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
        await nothing_recorded(db_read)

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
        await nothing_recorded(db_read)
        # An id of ours with a NUL names no transaction: recorded, nothing moves.
        bad = intent_object(started, "succeeded", metadata={"transaction_id": "ptx_\x00"}, id="pi_\x00")
        assert (await shop.send(stripe_event("payment_intent.succeeded", bad))).status == 200
        [row] = await db_read("events")
        assert row["result"] == "unknown_transaction"

    async def test_a_huge_body_is_a_413(self, shop: StripeShop, db_read: Any) -> None:
        body = json.dumps({"padding": "x" * (600 * 1024)})
        resp = await shop.client.post(
            "/billing/stripe", data=body, headers={"Stripe-Signature": signature_header(body, shop.webhook_secret)}
        )
        assert resp.status == 413
        await nothing_recorded(db_read)

    async def test_a_live_event_under_a_test_account_is_refused(self, shop: StripeShop, db_read: Any) -> None:
        started = await shop.start()
        resp = await shop.send(
            stripe_event("payment_intent.succeeded", intent_object(started, "succeeded"), livemode=True)
        )
        assert (resp.status, await resp.json()) == (400, {"error": "livemode_mismatch"})
        await nothing_recorded(db_read)
        metrics = await (await shop.client.get("/metrics")).text()
        assert 'provider_callbacks_rejected_total{provider="stripe",reason="livemode_mismatch"} 1.0' in metrics

    async def test_secrets_never_show(self, shop: StripeShop, caplog: pytest.LogCaptureFixture) -> None:
        resp = await shop.send(stripe_event("payment_intent.succeeded", {"id": "pi_x"}), secret=new_webhook_secret())
        text = await resp.text()
        for secret in (shop.webhook_secret, shop.secret_key):
            assert secret not in text
            assert secret not in caplog.text


class TestUnstorableValues:
    async def test_a_nul_or_an_overlong_value_in_a_signed_event_is_stored_made_storable(
        self, shop: StripeShop, db_read: Any
    ) -> None:
        """PostgreSQL refuses NUL in text, and columns have lengths: a value we only keep must never make
        the webhook fail (Stripe would send it again for days)."""
        started = await shop.start()
        error = {"code": "card_declined" + "x" * 100, "message": "declined\u0000 by the bank " + "y" * 5000}
        failed = intent_object(started, "requires_payment_method", last_payment_error=error)
        resp = await shop.send(stripe_event("payment_intent.payment_failed", failed))
        assert resp.status == 200, await resp.text()
        [row] = await db_read("events")
        assert row["transaction_id"] == started["provider_transaction_id"]
        assert (await transaction(db_read, started["provider_transaction_id"]))["status"] == "pending"


def _charge(started: dict[str, Any]) -> dict[str, Any]:
    """The payment's charge: ``charge.succeeded`` both settles the payment and is projected."""
    return {
        "id": f"ch_{started['provider_transaction_id']}",
        "object": "charge",
        "status": "succeeded",
        "captured": True,
        "amount": 5000,
        "currency": "usd",
        "payment_intent": started["provider_reference"],
        "created": int(time.time()) - 5,
    }


async def _everything(engine: AsyncEngine, db_read: Any) -> dict[str, list[Any]]:
    """What a delivery may change: the inbox, the outbox, the payments and the billing projections."""
    async with engine.connect() as conn:
        projected = list((await conn.execute(select(StripeObjectRow.__table__))).mappings().all())
    return {
        "events": await db_read("events"),
        "outbox": await db_read("outbox"),
        "transactions": await db_read("transactions"),
        "projected": projected,
    }


def _counted(metrics: str, line: str) -> float:
    return sum(float(m.rsplit(" ", 1)[1]) for m in metrics.splitlines() if m.startswith(line + " "))


class TestReplays:
    """Stripe signs every delivery attempt afresh (a retry carries a new ``t``): a request whose ``t`` and
    signed body are those of a delivery already received is someone else's copy of it."""

    async def test_an_exact_replay_is_refused_and_changes_nothing(
        self, shop: StripeShop, engine: AsyncEngine, db_read: Any
    ) -> None:
        started = await shop.start()
        event = stripe_event("charge.succeeded", _charge(started))
        t = int(time.time())
        assert (await shop.send(event, timestamp=t)).status == 200
        before = await _everything(engine, db_read)
        assert "provider.payment.succeeded" in [e["event_type"] for e in outbox_events(before["outbox"])]
        assert len(before["projected"]) == 1
        resp = await shop.send(event, timestamp=t)
        assert (resp.status, await resp.json()) == (400, {"error": "replayed"})
        assert await _everything(engine, db_read) == before
        metrics = await (await shop.client.get("/metrics")).text()
        assert _counted(metrics, 'provider_callbacks_rejected_total{provider="stripe",reason="replayed"}') == 1
        assert _counted(metrics, 'provider_callbacks_total{provider="stripe",result="duplicate"}') == 0

    async def test_a_replay_of_an_event_of_no_account_of_ours_is_refused(self, shop: StripeShop, db_read: Any) -> None:
        event = stripe_event("customer.created", {"id": "cus_1", "object": "customer"}, account="acct_elsewhere")
        t = int(time.time())
        assert (await shop.send(event, timestamp=t)).status == 200
        [row] = await db_read("events")
        assert row["result"] == "unknown_account"
        resp = await shop.send(event, timestamp=t)
        assert (resp.status, await resp.json()) == (400, {"error": "replayed"})
        assert await db_read("events") == [row]

    async def test_stripes_redelivery_is_a_duplicate_and_a_replay_of_it_is_refused(
        self, shop: StripeShop, engine: AsyncEngine, db_read: Any
    ) -> None:
        """Stripe retries after a lost answer with a new ``t``: a duplicate (200, nothing moves). Each
        delivery received stays refused as a replay, the first and the retry alike."""
        started = await shop.start()
        event = stripe_event("charge.succeeded", _charge(started))
        t = int(time.time())
        assert (await shop.send(event, timestamp=t)).status == 200
        before = await _everything(engine, db_read)
        resp = await shop.send(event, timestamp=t + 1)
        assert (resp.status, await resp.json()) == (200, {"received": True})
        after = await _everything(engine, db_read)
        [row] = after["events"]
        assert row["result"] == "applied"
        assert row["deliveries"] == [f"{t}:{shop.account_id}", f"{t + 1}:{shop.account_id}"]
        assert {k: v for k, v in after.items() if k != "events"} == {k: v for k, v in before.items() if k != "events"}
        for stamp in (t, t + 1):
            resp = await shop.send(event, timestamp=stamp)
            assert (resp.status, await resp.json()) == (400, {"error": "replayed"})
        assert await _everything(engine, db_read) == after
        metrics = await (await shop.client.get("/metrics")).text()
        assert _counted(metrics, 'provider_callbacks_total{provider="stripe",result="duplicate"}') == 1
        assert _counted(metrics, 'provider_callbacks_rejected_total{provider="stripe",reason="replayed"}') == 2

    async def test_identical_requests_at_once_apply_once_and_the_others_are_refused(
        self, shop: StripeShop, engine: AsyncEngine, db_read: Any
    ) -> None:
        """The first to commit its inbox row applies; each other copy waits for that row and finds its
        delivery there: a replay, 400 (which copy was Stripe's is unknowable, and a refused Stripe
        delivery is retried with a new ``t``, a duplicate then)."""
        started = await shop.start()
        event = stripe_event("charge.succeeded", _charge(started))
        t = int(time.time())
        answers = await asyncio.gather(*(shop.send(event, timestamp=t) for _ in range(10)))
        statuses = sorted([a.status for a in answers])
        assert statuses == [200] + [400] * 9
        for answer in answers:
            if answer.status == 400:
                assert await answer.json() == {"error": "replayed"}
        done = await _everything(engine, db_read)
        [row] = done["events"]
        assert (row["result"], row["deliveries"]) == ("applied", [f"{t}:{shop.account_id}"])
        assert [e["event_type"] for e in outbox_events(done["outbox"])].count("provider.payment.succeeded") == 1
        assert len(done["projected"]) == 1
        metrics = await (await shop.client.get("/metrics")).text()
        assert _counted(metrics, 'provider_callbacks_rejected_total{provider="stripe",reason="replayed"}') == 9

    async def test_different_events_signed_in_the_same_second_never_collide(
        self, shop: StripeShop, db_read: Any
    ) -> None:
        t = int(time.time())
        first = stripe_event("customer.created", {"id": "cus_1", "object": "customer", "created": t})
        second = stripe_event("customer.created", {"id": "cus_2", "object": "customer", "created": t})
        answers = await asyncio.gather(shop.send(first, timestamp=t), shop.send(second, timestamp=t))
        assert [a.status for a in answers] == [200, 200]
        assert sorted(e["result"] for e in await db_read("events")) == ["recorded", "recorded"]

    async def test_one_event_from_two_endpoints_in_the_same_second_is_no_replay(
        self, shop: StripeShop, db_read: Any
    ) -> None:
        """Two Connect endpoints of ours (two secrets) both get a connected account's event, signed in
        the same second: not a replay. The event names no account of ours, so it has one inbox row."""
        other_secret = new_webhook_secret()
        await shop.add_account(webhook_secret=other_secret, connected_account="acct_other")
        event = stripe_event("customer.created", {"id": "cus_1", "object": "customer"}, account="acct_elsewhere")
        t = int(time.time())
        assert (await shop.send(event, timestamp=t)).status == 200
        resp = await shop.send(event, secret=other_secret, timestamp=t)
        assert (resp.status, await resp.json()) == (200, {"received": True})
        [row] = await db_read("events")
        assert row["result"] == "unknown_account"
        assert len(row["deliveries"]) == 2
