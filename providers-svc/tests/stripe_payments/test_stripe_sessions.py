"""What localstripe cannot serve, against a small fake of Stripe's Checkout Session API on loopback: our
cancel expires an open session (and cancels a held intent of a completed one), and the status of a
session in our terms; plus concurrent deliveries of one event."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from providers_svc.db.models import ProviderTransactionRow
from providers_svc.db.repositories import transaction_snapshot
from providers_svc.domain.transactions import TransactionStatus
from providers_svc.keys import key_ring_key, stripe_webhooks_key, uow_factory_key
from providers_svc.services.accounts import account_by_id
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from .conftest import TENANT, ShopFactory, StripeShop, new_webhook_secret, stripe_event
from .helpers import payment_side

pytestmark = pytest.mark.postgres


class FakeSessions:
    """Checkout Sessions and PaymentIntents by id, and every request made."""

    def __init__(self) -> None:
        self.sessions: dict[str, dict[str, Any]] = {}
        self.intents: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str, str | None]] = []

    def app(self) -> web.Application:
        async def session(request: web.Request) -> web.Response:
            self.calls.append((request.method, request.path, request.headers.get("Idempotency-Key")))
            found = self.sessions.get(request.match_info["id"])
            if found is None:
                return web.json_response({"error": {"type": "invalid_request_error"}}, status=404)
            if request.path.endswith("/expire"):
                found["status"] = "expired"
            return web.json_response(found)

        async def intent(request: web.Request) -> web.Response:
            self.calls.append((request.method, request.path, request.headers.get("Idempotency-Key")))
            found = self.intents[request.match_info["id"]]
            if request.path.endswith("/cancel"):
                found["status"] = "canceled"
            if request.path.endswith("/capture"):
                found["status"] = "succeeded"
            return web.json_response(found)

        app = web.Application()
        app.router.add_get("/v1/checkout/sessions/{id}", session)
        app.router.add_post("/v1/checkout/sessions/{id}/expire", session)
        app.router.add_get("/v1/payment_intents/{id}", intent)
        app.router.add_post("/v1/payment_intents/{id}/cancel", intent)
        app.router.add_post("/v1/payment_intents/{id}/capture", intent)
        return app


async def _session_txn(engine: AsyncEngine, account_id: str, session: str) -> str:
    ptx = f"ptx_test{secrets.token_hex(8)}"
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(
            insert(ProviderTransactionRow).values(
                id=ptx,
                tenant_id=TENANT,
                payment_id=f"pay_{secrets.token_hex(8)}",
                provider="stripe",
                amount=5000,
                currency="USD",
                status="pending",
                provider_reference=session,
                account_id=account_id,
                expires_at=now + timedelta(minutes=30),
                created_at=now,
                updated_at=now,
            )
        )
    return ptx


@pytest.fixture
async def fake(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> tuple[FakeSessions, str]:
    sessions = FakeSessions()
    server = await aiohttp_server(sessions.app(), host="127.0.0.1")
    return sessions, str(server.make_url("")).rstrip("/")


async def _adapter_and_txn(shop: StripeShop, engine: AsyncEngine, base: str, session: str) -> tuple[Any, Any]:
    account_id, _ = await shop.add_account(api_base=base, flow="checkout_session")
    ptx = await _session_txn(engine, account_id, session)
    app = shop.client.app
    account = await account_by_id(app[uow_factory_key], app[key_ring_key], account_id)
    assert account is not None
    async with app[uow_factory_key]() as unit:
        txn = await transaction_snapshot(unit, ptx)
    return app[stripe_webhooks_key].provider.bound(account), txn


class TestSessionCancel:
    async def test_an_open_session_is_expired(
        self, shop: StripeShop, engine: AsyncEngine, fake: tuple[FakeSessions, str]
    ) -> None:
        sessions, base = fake
        sessions.sessions["cs_test_open"] = {"id": "cs_test_open", "status": "open", "payment_intent": None}
        adapter, txn = await _adapter_and_txn(shop, engine, base, "cs_test_open")
        assert await adapter.cancel(txn) is True
        assert sessions.sessions["cs_test_open"]["status"] == "expired"
        [expire] = [c for c in sessions.calls if c[0] == "POST"]
        assert expire[1] == "/v1/checkout/sessions/cs_test_open/expire"
        assert expire[2] == f"{txn.tenant_id}:{txn.payment_id}:{txn.id}:expire"
        status = await adapter.fetch_status(txn)
        assert (status.status, status.failure_code) == (TransactionStatus.FAILED, "stripe_session_expired")

    async def test_a_completed_session_with_a_held_payment_cancels_the_hold(
        self, shop: StripeShop, engine: AsyncEngine, fake: tuple[FakeSessions, str]
    ) -> None:
        sessions, base = fake
        sessions.sessions["cs_test_held"] = {"id": "cs_test_held", "status": "complete", "payment_intent": "pi_held"}
        sessions.intents["pi_held"] = {"id": "pi_held", "status": "requires_capture", "amount": 5000}
        adapter, txn = await _adapter_and_txn(shop, engine, base, "cs_test_held")
        assert await adapter.cancel(txn) is True
        assert sessions.intents["pi_held"]["status"] == "canceled"

    async def test_a_paid_session_is_not_cancellable(
        self, shop: StripeShop, engine: AsyncEngine, fake: tuple[FakeSessions, str]
    ) -> None:
        sessions, base = fake
        sessions.sessions["cs_test_paid"] = {"id": "cs_test_paid", "status": "complete", "payment_intent": "pi_paid"}
        sessions.intents["pi_paid"] = {"id": "pi_paid", "status": "succeeded", "amount": 5000}
        adapter, txn = await _adapter_and_txn(shop, engine, base, "cs_test_paid")
        assert await adapter.cancel(txn) is False
        status = await adapter.fetch_status(txn)
        assert (status.status, status.provider_reference) == (TransactionStatus.SUCCEEDED, "pi_paid")
        assert not [c for c in sessions.calls if c[0] == "POST"]


class TestSessionThenIntent:
    async def test_an_intent_event_of_the_sessions_second_is_not_taken_for_an_older_one(
        self, shop: StripeShop, engine: AsyncEngine, fake: tuple[FakeSessions, str], db_read: Any
    ) -> None:
        """Stripe sends a session's completion and its intent's events in the same second: the session's
        says nothing of the intent's status, so the intent's event decides from its own object, with no
        call to Stripe (which would run under the transaction's lock)."""
        sessions, base = fake
        secret = new_webhook_secret()
        account_id, _ = await shop.add_account(api_base=base, flow="checkout_session", webhook_secret=secret)
        ptx = await _session_txn(engine, account_id, "cs_test_async")
        async with shop.client.app[uow_factory_key]() as unit:
            txn = await transaction_snapshot(unit, ptx)
        assert txn is not None
        now = int(time.time())
        completed = {
            "id": "cs_test_async",
            "object": "checkout.session",
            "status": "complete",
            "payment_status": "unpaid",  # a bank debit: the async events decide
            "payment_intent": "pi_async",
            "amount_total": 5000,
            "currency": "usd",
            "metadata": {"transaction_id": ptx},
        }
        processing = {
            "id": "pi_async",
            "object": "payment_intent",
            "status": "processing",
            "amount": 5000,
            "currency": "usd",
            "metadata": {"transaction_id": ptx},
        }
        for event in (
            stripe_event("checkout.session.completed", completed, created=now),
            stripe_event("payment_intent.processing", processing, created=now),
        ):
            assert (await shop.send(event, secret=secret)).status == 200
        assert [c for c in sessions.calls if c[1].startswith("/v1/payment_intents")] == []
        results = sorted(r["result"] for r in await db_read("events"))
        assert results == ["pending", "pending"]


class TestHeldIntentOfAPaidPayment:
    async def test_it_is_captured_never_released(
        self, shop: StripeShop, engine: AsyncEngine, fake: tuple[FakeSessions, str]
    ) -> None:
        """A payment that succeeded through an intent Stripe still holds (a session reported paid before
        its capture): the hold is captured. Cancelling it would leave a paid payment with no money."""
        sessions, base = fake
        secret = new_webhook_secret()
        account_id, _ = await shop.add_account(
            api_base=base, flow="checkout_session", capture_method="manual", webhook_secret=secret
        )
        ptx = await _session_txn(engine, account_id, "pi_held_paid")
        async with engine.begin() as conn:
            await conn.execute(
                update(ProviderTransactionRow).where(ProviderTransactionRow.id == ptx).values(status="succeeded")
            )
        held = {
            "id": "pi_held_paid",
            "object": "payment_intent",
            "status": "requires_capture",
            "amount": 5000,
            "amount_capturable": 5000,
            "currency": "usd",
            "capture_method": "manual",
            "metadata": {"transaction_id": ptx},
        }
        sessions.intents["pi_held_paid"] = dict(held)
        event = stripe_event("payment_intent.amount_capturable_updated", held)
        assert (await shop.send(event, secret=secret)).status == 200
        posts = [c[1] for c in sessions.calls if c[0] == "POST"]
        assert posts == ["/v1/payment_intents/pi_held_paid/capture"]


class TestCancelRefused:
    async def test_a_session_stripe_no_longer_knows_is_a_503_and_the_payment_stays_payable(
        self, shop: StripeShop, engine: AsyncEngine, fake: tuple[FakeSessions, str], db_read: Any
    ) -> None:
        """Stripe answering 404 for the session proves nothing about the money: never a 500, never
        cancelled on our side; asked again later."""
        _, base = fake
        adapter, txn = await _adapter_and_txn(shop, engine, base, "cs_test_gone")
        del adapter
        resp = await shop.client.post(
            f"/internal/payments/{txn.payment_id}/cancel", headers=shop.internal_headers(TENANT)
        )
        assert resp.status == 503, await resp.text()
        assert (await resp.json())["code"] == "provider_unavailable"
        [row] = [t for t in await db_read("transactions") if t["id"] == txn.id]
        assert row["status"] == "pending"


class TestConcurrentDeliveries:
    async def test_twenty_copies_of_one_event_move_money_once(self, shop: StripeShop, db_read: Any) -> None:
        started = await shop.start()
        obj = {
            "id": started["provider_reference"],
            "object": "payment_intent",
            "status": "succeeded",
            "amount": 5000,
            "currency": "usd",
            "metadata": {"transaction_id": started["provider_transaction_id"]},
        }
        event = stripe_event("payment_intent.succeeded", obj)
        answers = await asyncio.gather(*(shop.send(event) for _ in range(20)))
        assert [a.status for a in answers] == [200] * 20
        assert len(await db_read("events")) == 1
        assert len(await db_read("outbox")) == 1

    async def test_two_events_of_one_payment_at_once_settle_it_once(
        self, stripe_shop_factory: ShopFactory, db_read: Any
    ) -> None:
        shop = await stripe_shop_factory()
        started = await shop.start()
        obj = {
            "id": started["provider_reference"],
            "object": "payment_intent",
            "status": "succeeded",
            "amount": 5000,
            "currency": "usd",
            "metadata": {"transaction_id": started["provider_transaction_id"]},
        }
        charge = {
            "id": "ch_1",
            "object": "charge",
            "status": "succeeded",
            "captured": True,
            "amount": 5000,
            "currency": "usd",
            "payment_intent": started["provider_reference"],
        }
        answers = await asyncio.gather(
            shop.send(stripe_event("payment_intent.succeeded", obj)),
            shop.send(stripe_event("charge.succeeded", charge)),
        )
        assert [a.status for a in answers] == [200, 200]
        results = sorted(e["result"] for e in await db_read("events"))
        assert results == ["applied", "same_outcome"]
        assert [e["event_type"] for e in payment_side(await db_read("outbox"))] == ["provider.payment.succeeded"]
