"""Test and live mode (API.md, PRV-12): the caller's token says the tenant's mode; the sandbox is never
offered to, started for, or believed about a live payment, and every transaction and event keeps it."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from providers_svc.db.models import ProviderTransactionRow
from providers_svc.domain.transactions import Verdict
from providers_svc.keys import uow_factory_key
from providers_svc.services.callbacks import ProviderNotice, handle_notice
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

Headers = Callable[..., dict[str, str]]


async def make_live(engine: AsyncEngine, txn_id: str) -> None:
    """A live transaction at the sandbox, which the API never creates: as if written by a bug or by
    hand. The bank and the callback must refuse it all the same."""
    async with engine.begin() as conn:
        await conn.execute(
            update(ProviderTransactionRow).where(ProviderTransactionRow.id == txn_id).values(livemode=True)
        )


@pytest.fixture
async def live_sandbox(
    make_client: Any, start_payment: Callable[..., Awaitable[dict[str, Any]]], engine: AsyncEngine
) -> tuple[Any, dict[str, Any]]:
    client = await make_client()
    payment = await start_payment(client)
    await make_live(engine, payment["provider_transaction_id"])
    return client, payment


class TestProvidersOffered:
    async def test_a_live_caller_is_not_offered_the_sandbox(self, make_client: Any, internal_headers: Headers) -> None:
        client = await make_client()
        live = await client.get("/internal/providers?currency=USD", headers=internal_headers(livemode=True))
        assert live.status == 200
        assert (await live.json())["data"] == []
        test = await client.get("/internal/providers?currency=USD", headers=internal_headers(livemode=False))
        assert [p["name"] for p in (await test.json())["data"]] == ["sandbox"]


class TestStart:
    async def test_the_sandbox_for_a_live_caller_is_422_and_writes_nothing(
        self, make_client: Any, internal_headers: Headers, payment_request: Any, db_read: Any
    ) -> None:
        client = await make_client()
        response = await client.post(
            "/internal/payments/start", json=payment_request(), headers=internal_headers(livemode=True)
        )
        assert response.status == 422
        assert response.content_type == "application/problem+json"
        assert (await response.json())["code"] == "test_provider_in_livemode"
        assert await db_read("transactions") == []

    async def test_a_test_caller_stores_test_mode(
        self, make_client: Any, start_payment: Callable[..., Awaitable[dict[str, Any]]], db_read: Any
    ) -> None:
        client = await make_client()
        await start_payment(client)
        [txn] = await db_read("transactions")
        assert txn["livemode"] is False

    async def test_the_same_payment_in_the_other_mode_is_a_conflict(
        self, live_sandbox: tuple[Any, dict[str, Any]], internal_headers: Headers, payment_request: Any
    ) -> None:
        client, payment = live_sandbox
        body = payment_request(payment_id=payment["payment_id"])
        response = await client.post("/internal/payments/start", json=body, headers=internal_headers())
        assert response.status == 409
        assert (await response.json())["code"] == "payment_conflict"


class TestSandboxBank:
    async def test_the_payer_page_refuses_a_live_transaction(
        self, live_sandbox: tuple[Any, dict[str, Any]], db_read: Any
    ) -> None:
        client, payment = live_sandbox
        url = f"/sandbox/pay/{payment['provider_transaction_id']}"
        page = await client.get(url)
        assert page.status == 403
        html = await page.text()
        assert "test payments only" in html
        assert 'name="outcome"' not in html
        for outcome in ("succeed", "pending", "decline"):
            posted = await client.post(url, data={"outcome": outcome}, allow_redirects=False)
            assert posted.status == 403
        # No decision, so the bank owes no signed callback at all.
        assert await db_read("charges") == []

    async def test_a_signed_callback_for_a_live_transaction_is_refused(
        self, live_sandbox: tuple[Any, dict[str, Any]], sandbox_callback: Any, db_read: Any
    ) -> None:
        client, payment = live_sandbox
        callback = sandbox_callback(payment["provider_transaction_id"])
        response = await client.post("/billing/sandbox", data=callback.body, headers=callback.headers)
        assert response.status == 400
        assert await response.json() == {"error": "livemode_refused"}
        [txn] = await db_read("transactions")
        assert txn["status"] == "pending"
        assert await db_read("events") == []
        assert await db_read("outbox") == []
        metrics = await (await client.get("/metrics")).text()
        assert 'provider_callbacks_total{provider="sandbox",result="livemode_refused"} 1.0' in metrics


class TestOutcomeCarriesTheMode:
    async def test_a_live_transactions_outcome_is_live(
        self, live_sandbox: tuple[Any, dict[str, Any]], db_read: Any
    ) -> None:
        # A provider that moves real money (test_only False) settles a live transaction: the outcome
        # and its envelope say live.
        client, payment = live_sandbox
        notice = ProviderNotice(
            provider="sandbox",
            external_id="ext_live_1",
            event_type="payment.succeeded",
            transaction_id=payment["provider_transaction_id"],
            verdict=Verdict.SUCCEEDED,
            amount=5000,
            currency="USD",
            payload="{}",
        )
        handled = await handle_notice(client.app[uow_factory_key], notice)
        assert handled.result.value == "applied"
        [row] = await db_read("outbox")
        event = json.loads(row["body"])
        assert event["event_type"] == "provider.payment.succeeded"
        assert event["livemode"] is True
        assert event["data"]["livemode"] is True
