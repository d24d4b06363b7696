"""Disputes (``provider.dispute.updated``), refund events (recorded), Connect routing, the followers in the
webhook's unit of work, and the payer page."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import pytest
from billing_runtime.internal_auth import INTERNAL_HEADER, sign_internal
from billing_runtime.prepared import InTransaction, fetch_prepared
from billing_runtime.testing import PG_DSN
from providers_svc.db.stripe import StripeRepository
from providers_svc.domain.stripe_events import VerifiedStripeEvent
from providers_svc.services.uow import ProvidersUnitOfWork
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from .conftest import TENANT, ShopFactory, StripeShop, stripe_event
from .helpers import (
    dispute_object,
    intent_at_fake,
    intent_object,
    nothing_recorded,
    outbox_events,
    payment_side,
    transaction,
)

pytestmark = pytest.mark.postgres

# reconciliation-svc's own key in the tests' settings (PROVIDERS_RECONCILIATION_INTERNAL_SECRET).
RECONCILIATION_SECRET = "test-reconciliation-secret-0123456789abcdef"


class TestDisputes:
    async def test_a_dispute_of_our_payment_is_published(self, shop: StripeShop, db_read: Any) -> None:
        started = await shop.start()
        await shop.send(stripe_event("payment_intent.succeeded", intent_object(started, "succeeded")))
        dispute = dispute_object(started["provider_reference"])
        created = int(time.time())
        assert (await shop.send(stripe_event("charge.dispute.created", dispute, created=created))).status == 200
        withdrawn = {**dispute, "balance_transactions": [{"amount": -5000}]}
        await shop.send(stripe_event("charge.dispute.funds_withdrawn", withdrawn, created=created + 1))
        published = [e for e in outbox_events(await db_read("outbox")) if e["event_type"] == "provider.dispute.updated"]
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

    async def test_the_verdicts_hand_out_every_published_state_again(self, shop: StripeShop, db_read: Any) -> None:
        """``GET /internal/verdicts`` (reconciliation's rebuild): each state the webhook published, equal
        to it but for its envelope's id and time."""
        started = await shop.start()
        await shop.send(stripe_event("payment_intent.succeeded", intent_object(started, "succeeded")))
        dispute = dispute_object(started["provider_reference"])
        created = int(time.time())
        withdrawn = {**dispute, "balance_transactions": [{"amount": -5000}]}
        for type_, obj, at in [
            ("charge.dispute.created", dispute, created),
            ("charge.dispute.funds_withdrawn", withdrawn, created + 1),
            ("charge.dispute.closed", {**withdrawn, "status": "lost"}, created + 2),
        ]:
            assert (await shop.send(stripe_event(type_, obj, created=at))).status == 200
        # Not ours: recorded, never published, never handed out.
        await shop.send(stripe_event("charge.dispute.created", dispute_object("pi_notours")))
        published = [e for e in outbox_events(await db_read("outbox")) if e["event_type"] == "provider.dispute.updated"]
        token = sign_internal(RECONCILIATION_SECRET, issuer="reconciliation", audience="providers", tenant_id=None)
        response = await shop.client.get("/internal/verdicts", headers={INTERNAL_HEADER: token})
        assert response.status == 200, await response.text()
        handed = [e for e in (await response.json())["data"] if e["event_type"] == "provider.dispute.updated"]
        assert len(handed) == len(published) == 3
        same = ("event_type", "tenant_id", "livemode", "correlation_id", "causation_id", "data", "source")
        assert [{k: e[k] for k in same} for e in handed] == [{k: e[k] for k in same} for e in published]
        assert [e["data"]["funds_withdrawn"] for e in handed] == [False, True, True]

    async def test_a_dispute_before_its_payments_success_is_refused_until_after_it(
        self, shop: StripeShop, db_read: Any
    ) -> None:
        """Stripe does not order events: published before the success, the dispute would meet an unpaid
        payment at payments-svc and be filed as an anomaly for good. Refused with a 503 (nothing kept),
        it is applied when Stripe sends it again after the success."""
        started = await shop.start()
        dispute = stripe_event("charge.dispute.created", dispute_object(started["provider_reference"]))
        assert (await shop.send(dispute)).status == 503
        await nothing_recorded(db_read)
        await shop.send(stripe_event("payment_intent.succeeded", intent_object(started, "succeeded")))
        assert (await shop.send(dispute)).status == 200
        published = [e for e in outbox_events(await db_read("outbox")) if e["event_type"] == "provider.dispute.updated"]
        assert [p["data"]["payment_id"] for p in published] == [started["payment_id"]]

    async def test_a_dispute_naming_only_its_charge_is_found_through_stripe(
        self, shop: StripeShop, db_read: Any
    ) -> None:
        started = await shop.start()
        assert (await shop.pay(started, "visa")).status == 303
        await shop.send(
            stripe_event("payment_intent.succeeded", await intent_at_fake(shop, started["provider_reference"]))
        )
        intent = await intent_at_fake(shop, started["provider_reference"])
        charge = intent["latest_charge"]
        charge_id = charge["id"] if isinstance(charge, dict) else charge
        await shop.send(stripe_event("charge.dispute.closed", dispute_object(None, charge=charge_id, status="won")))
        [published] = [
            e for e in outbox_events(await db_read("outbox")) if e["event_type"] == "provider.dispute.updated"
        ]
        assert (published["data"]["status"], published["data"]["payment_id"]) == ("won", started["payment_id"])

    async def test_a_dispute_of_a_charge_not_ours_is_only_recorded(self, shop: StripeShop, db_read: Any) -> None:
        assert (await shop.send(stripe_event("charge.dispute.created", dispute_object("pi_notours")))).status == 200
        [row] = await db_read("events")
        assert row["result"] == "unknown_transaction"
        assert payment_side(await db_read("outbox")) == []


class TestRefundEvents:
    @pytest.mark.parametrize(
        "type_", ["refund.created", "refund.updated", "refund.failed", "charge.refunded", "charge.refund.updated"]
    )
    async def test_refund_events_are_recorded_against_the_payment(
        self, shop: StripeShop, db_read: Any, type_: str
    ) -> None:
        started = await shop.start()
        obj = {"id": "re_1", "object": "refund", "payment_intent": started["provider_reference"], "amount": 100}
        assert (await shop.send(stripe_event(type_, obj))).status == 200
        [row] = await db_read("events")
        assert (row["result"], row["transaction_id"]) == ("refund_recorded", started["provider_transaction_id"])
        assert payment_side(await db_read("outbox")) == []


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

    async def test_a_connected_account_in_both_modes_gets_each_modes_events(
        self, stripe_shop_factory: ShopFactory, db_read: Any
    ) -> None:
        """A production Connect endpoint receives its connected accounts' test events too, on one secret:
        each mode's event goes to the account of that mode, and one of a mode we have no account of is
        recorded and acknowledged (a 4xx would have Stripe retry it for days), never applied."""
        handed: list[tuple[str, str, bool]] = []

        async def follower(_unit: ProvidersUnitOfWork, event: VerifiedStripeEvent) -> None:
            handed.append((str(event.object["id"]), event.account_id, event.livemode))

        shop = await stripe_shop_factory(stripe_followers=[follower])
        test_account, _ = await shop.add_account(connected_account="acct_1Both")
        live_account, _ = await shop.add_account(connected_account="acct_1Both", environment="production")
        await shop.add_account(connected_account="acct_1Live", environment="production")
        customer = {"object": "customer"}
        live = stripe_event("customer.created", {**customer, "id": "cus_l"}, account="acct_1Both", livemode=True)
        test = stripe_event("customer.created", {**customer, "id": "cus_t"}, account="acct_1Both")
        stray = stripe_event("customer.created", {**customer, "id": "cus_s"}, account="acct_1Live")
        for event in (live, test, stray):
            assert (await shop.send(event)).status == 200
        assert handed == [("cus_l", live_account, True), ("cus_t", test_account, False)]
        rows = {r["external_id"].rsplit("/", 1)[-1]: r["result"] for r in await db_read("events")}
        assert [rows[e["id"]] for e in (live, test, stray)] == ["recorded", "recorded", "other_mode"]

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
        event = stripe_event("payment_intent.succeeded", intent_object(started, "succeeded"))
        assert (await shop.send(event)).status == 500
        await nothing_recorded(db_read)
        assert (await transaction(db_read, started["provider_transaction_id"]))["status"] == "pending"
        assert (await shop.send(event)).status == 200
        assert (await shop.send(event)).status == 200
        assert calls == [event["id"], event["id"]]
        assert [e["event_type"] for e in outbox_events(await db_read("outbox"))] == ["provider.payment.succeeded"]


class TestUnitsOfWork:
    async def test_an_event_is_applied_without_an_orm_session_unless_it_may_move_a_refund(
        self, stripe_shop_factory: ShopFactory, db_read: Any
    ) -> None:
        """The webhook's unit is driven (its transaction and statements sent by asyncpg itself: the
        ORM's session and execution layer cost a third of providers-svc's CPU per event); a refund
        event's is not, since our refunds' repository is the ORM's."""
        driven: dict[str, bool] = {}

        async def follower(unit: ProvidersUnitOfWork, event: VerifiedStripeEvent) -> None:
            driven[event.type] = isinstance(unit.statements, InTransaction)

        shop = await stripe_shop_factory(stripe_followers=[follower])
        started = await shop.start()
        reference = started["provider_reference"]
        refund = {"id": "re_1", "object": "refund", "payment_intent": reference, "amount": 100, "currency": "usd"}
        for event in (
            stripe_event("payment_intent.succeeded", intent_object(started, "succeeded")),
            stripe_event("customer.created", {"id": "cus_1", "object": "customer"}),
            stripe_event("charge.dispute.created", dispute_object(reference)),
            stripe_event("refund.created", refund),
        ):
            assert (await shop.send(event)).status == 200
        assert driven == {
            "payment_intent.succeeded": True,
            "customer.created": True,
            "charge.dispute.created": True,
            "refund.created": False,
        }
        results = sorted(r["result"] for r in await db_read("events"))
        assert results == ["applied", "dispute", "recorded", "refund_recorded"]

    async def test_the_inbox_row_is_written_again_only_when_its_result_is_not_the_presumed_one(
        self, shop: StripeShop, db_read: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An event is claimed with the result it has unless it moves something of ours (``recorded``
        for a customer, ``unknown_transaction`` for a payment made elsewhere): those rows are written
        once; an event that moves our payment has its result and transaction written at the commit."""
        rewritten: list[tuple[str, str | None]] = []
        original = StripeRepository.event_result

        def spy(row_id: str, result: str, transaction_id: str | None) -> Any:
            rewritten.append((result, transaction_id))
            return original(row_id, result, transaction_id)

        monkeypatch.setattr(StripeRepository, "event_result", staticmethod(spy))
        started = await shop.start()
        elsewhere = {"id": "pi_elsewhere", "object": "payment_intent", "status": "succeeded", "amount": 100}
        charge = {"id": "ch_elsewhere", "object": "charge", "status": "succeeded", "payment_intent": "pi_elsewhere"}
        for event in (
            stripe_event("customer.created", {"id": "cus_1", "object": "customer"}),
            # (An intent made elsewhere is recorded in one statement of its own; a charge takes the unit.)
            stripe_event("payment_intent.succeeded", {**elsewhere, "currency": "usd", "metadata": {}}),
            stripe_event("charge.succeeded", {**charge, "amount": 100, "currency": "usd", "metadata": {}}),
        ):
            assert (await shop.send(event)).status == 200
        assert rewritten == []
        ours = stripe_event("payment_intent.succeeded", intent_object(started, "succeeded"))
        assert (await shop.send(ours)).status == 200
        assert rewritten == [("applied", started["provider_transaction_id"])]
        stored = sorted((r["event_type"], r["result"], r["transaction_id"] or "") for r in await db_read("events"))
        assert stored == [
            ("charge.succeeded", "unknown_transaction", ""),
            ("customer.created", "recorded", ""),
            ("payment_intent.succeeded", "applied", started["provider_transaction_id"]),
            ("payment_intent.succeeded", "unknown_transaction", ""),
        ]

    async def test_an_intent_made_elsewhere_is_recorded_in_one_statement(
        self, shop: StripeShop, db_read: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An intent's event without our ids, of no transaction of ours, is recorded by one guarded
        statement that commits itself (no unit: its claim is never run); Stripe's redelivery of it is a
        duplicate and a copy of a delivery a replay, as for any event."""
        t = int(time.time())
        elsewhere = {"id": "pi_elsewhere", "object": "payment_intent", "status": "succeeded", "metadata": {}}
        event = stripe_event("payment_intent.succeeded", elsewhere)

        async def no_claim(*_args: Any) -> None:
            raise AssertionError("an intent made elsewhere takes no unit of work")

        with monkeypatch.context() as patched:
            patched.setattr(StripeRepository, "claim_event", no_claim)
            assert (await shop.send(event, timestamp=t)).status == 200
        [row] = await db_read("events")
        assert (row["result"], row["transaction_id"], row["deliveries"]) == (
            "unknown_transaction",
            None,
            [f"{t}:{shop.account_id}"],
        )
        assert (await shop.send(event, timestamp=t + 1)).status == 200
        [row] = await db_read("events")
        assert row["deliveries"] == [f"{t}:{shop.account_id}", f"{t + 1}:{shop.account_id}"]
        resp = await shop.send(event, timestamp=t)
        assert (resp.status, await resp.json()) == (400, {"error": "replayed"})
        assert await db_read("outbox") == []

    async def test_a_connection_lost_in_the_one_statement_record_is_a_503_and_the_redelivery_records_once(
        self, shop: StripeShop, engine: AsyncEngine, db_read: Any
    ) -> None:
        """The one statement of an intent made elsewhere waits on an inbox row the test holds (same
        account and event id, not committed); its backend is terminated meanwhile: 503, nothing kept,
        and Stripe's redelivery is recorded once."""
        elsewhere = {"id": "pi_elsewhere", "object": "payment_intent", "status": "succeeded", "metadata": {}}
        event = stripe_event("payment_intent.succeeded", elsewhere)
        dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        holder = await asyncpg.connect(dsn)
        try:
            held = holder.transaction()
            await held.start()
            await holder.execute(
                "INSERT INTO provider_events (id, provider, external_id, payload, received_at)"
                " VALUES ('pev_held', 'stripe', $1, '{}', now())",
                f"{shop.account_id}/{event['id']}",
            )
            sent = asyncio.create_task(shop.send(event))
            waiting: list[int] = []
            async with asyncio.timeout(10):
                while not waiting:
                    await asyncio.sleep(0.01)
                    waiting = [
                        r["pid"]
                        for r in await holder.fetch(
                            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                            " AND query LIKE '%INSERT INTO provider_events%' AND pid <> pg_backend_pid()"
                        )
                    ]
            await holder.execute("SELECT pg_terminate_backend($1)", waiting[0])
            resp = await sent
            assert resp.status == 503, await resp.text()
            await held.rollback()
        finally:
            await holder.close()
        assert await db_read("events") == []
        assert (await shop.send(event)).status == 200
        [row] = await db_read("events")
        assert (row["result"], row["transaction_id"]) == ("unknown_transaction", None)
        assert await db_read("outbox") == []

    async def test_our_intent_without_our_ids_is_still_found_by_its_id_and_applied(
        self, shop: StripeShop, db_read: Any
    ) -> None:
        """Our intents carry our ids, but metadata can be edited at Stripe: an intent's event without them
        is ours when a transaction's reference is the intent, and is applied, not only recorded."""
        started = await shop.start()
        stripped = intent_object(started, "succeeded", metadata={})
        assert (await shop.send(stripe_event("payment_intent.succeeded", stripped))).status == 200
        [row] = await db_read("events")
        assert (row["result"], row["transaction_id"]) == ("applied", started["provider_transaction_id"])
        assert (await transaction(db_read, started["provider_transaction_id"]))["status"] == "succeeded"

    async def test_another_follower_is_handed_an_intent_made_elsewhere(
        self, stripe_shop_factory: ShopFactory, db_read: Any
    ) -> None:
        """The one-statement record is only for events no follower acts on: a follower of the service's
        own beyond the projection is handed every verified event, in its unit."""
        seen: list[str] = []

        async def follower(_unit: ProvidersUnitOfWork, event: VerifiedStripeEvent) -> None:
            seen.append(str(event.object["id"]))

        shop = await stripe_shop_factory(stripe_followers=[follower])
        elsewhere = {"id": "pi_elsewhere", "object": "payment_intent", "status": "succeeded", "metadata": {}}
        assert (await shop.send(stripe_event("payment_intent.succeeded", elsewhere))).status == 200
        assert seen == ["pi_elsewhere"]
        [row] = await db_read("events")
        assert row["result"] == "unknown_transaction"

    async def test_a_connection_lost_mid_unit_is_a_503_and_the_redelivery_applies_once(
        self, stripe_shop_factory: ShopFactory, db_read: Any
    ) -> None:
        """The database connection of a driven unit is terminated after the event's statements and
        before its commit: nothing is kept, Stripe is told to try again, and its redelivery applies the
        event once."""
        kills: list[int] = []

        async def killer(unit: ProvidersUnitOfWork, _event: VerifiedStripeEvent) -> None:
            if kills:
                return
            [row] = await fetch_prepared(unit.statements, select(func.pg_backend_pid().label("pid")), {})
            kills.append(int(row["pid"]))
            admin = await asyncpg.connect(PG_DSN)
            try:
                await admin.execute("SELECT pg_terminate_backend($1)", kills[0])
            finally:
                await admin.close()

        shop = await stripe_shop_factory(stripe_followers=[killer])
        started = await shop.start()
        event = stripe_event("payment_intent.succeeded", intent_object(started, "succeeded"))
        failed = await shop.send(event)
        assert failed.status == 503, await failed.text()
        await nothing_recorded(db_read)
        assert (await transaction(db_read, started["provider_transaction_id"]))["status"] == "pending"
        assert (await shop.send(event)).status == 200
        assert (await shop.send(event)).status == 200
        assert [e["event_type"] for e in outbox_events(await db_read("outbox"))] == ["provider.payment.succeeded"]
        assert (await transaction(db_read, started["provider_transaction_id"]))["status"] == "succeeded"


class TestPayerPage:
    async def test_a_wrong_token_is_a_404(self, shop: StripeShop) -> None:
        started = await shop.start()
        resp = await shop.client.get(f"/pay/stripe/{started['provider_transaction_id']}/forged")
        assert resp.status == 404
        assert started["provider_reference"] not in await resp.text()

    @pytest.mark.parametrize(
        "path", ["/pay/stripe/ptx%00/x", "/pay/stripe/ptx_1/%00", "/pay/stripe/" + "p" * 300 + "/x"]
    )
    async def test_a_path_that_names_no_payment_is_a_404(self, shop: StripeShop, path: str) -> None:
        resp = await shop.client.get(path)
        assert resp.status == 404

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
        intent = await intent_at_fake(shop, started["provider_reference"])
        assert f'data-secret="{intent["client_secret"]}"' in html
        csp = page.headers["Content-Security-Policy"]
        assert "script-src https://js.stripe.com 'nonce-" in csp and "connect-src https://api.stripe.com" in csp
        assert "4242" not in html
        # Test cards are refused for it.
        resp = await shop.client.post(path, data={"card": "visa"})
        assert resp.status == 403
