"""``POST /internal/payments/{payment_id}/sync`` on the sandbox: the payer pays but the bank loses the
callback ("Pay, but lose the callback"), and the sync heals it exactly as the callback would have:
once, whatever the repeats and races (docs/INTERNAL.md "Reconciliation")."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from .conftest import outcome_events, reconciliation_headers


async def _lose_the_callback(client: Any, ptx: str) -> None:
    response = await client.post(f"/sandbox/pay/{ptx}", data={"outcome": "succeed_lost"}, allow_redirects=False)
    assert response.status == 303


async def _sync(client: Any, payment_id: str) -> dict[str, Any]:
    response = await client.post(f"/internal/payments/{payment_id}/sync", headers=reconciliation_headers())
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


class TestLostCallback:
    async def test_the_bank_keeps_the_lost_callback(
        self, make_client: Any, start_payment: Callable[..., Awaitable[dict[str, Any]]], db_read: Any
    ) -> None:
        client = await make_client(roles=("api", "worker"), public_gateway_url="http://127.0.0.1:9")
        payment = await start_payment(client)
        page = await (await client.get(f"/sandbox/pay/{payment['provider_transaction_id']}")).text()
        assert 'name="outcome" value="succeed_lost"' in page
        await _lose_the_callback(client, payment["provider_transaction_id"])
        await asyncio.sleep(0.3)  # the sender polls every 0.05 s: it would have tried by now
        (charge,) = await db_read("charges")
        assert (charge["outcome"], charge["due_at"], charge["attempts"]) == ("succeed", None, 0)
        (txn,) = await db_read("transactions")
        assert txn["status"] == "pending"


class TestSyncHeals:
    async def test_a_paid_payment_is_recorded_and_published_once(
        self, make_client: Any, start_payment: Callable[..., Awaitable[dict[str, Any]]], db_read: Any
    ) -> None:
        client = await make_client()
        payment = await start_payment(client)
        await _lose_the_callback(client, payment["provider_transaction_id"])

        first = await _sync(client, payment["payment_id"])
        assert first == {
            "payment_id": payment["payment_id"],
            "provider": "sandbox",
            "status": "succeeded",
            "published": True,
        }
        second = await _sync(client, payment["payment_id"])
        assert second == {**first, "published": False}

        (event,) = await outcome_events(db_read)
        assert event["event_type"] == "provider.payment.succeeded"
        assert event["data"]["observed_via"] == "status_check"
        assert event["data"]["payment_id"] == payment["payment_id"]
        assert event["data"]["amount"] == 5000
        (txn,) = await db_read("transactions")
        assert txn["status"] == "succeeded"
        (recorded,) = await db_read("events")
        assert (recorded["event_type"], recorded["result"]) == ("status_check", "applied")
        assert json.loads(recorded["payload"])["status"] == "succeeded"

    async def test_a_pending_payment_publishes_nothing(
        self, make_client: Any, start_payment: Callable[..., Awaitable[dict[str, Any]]], db_read: Any
    ) -> None:
        client = await make_client()
        payment = await start_payment(client)
        assert (await _sync(client, payment["payment_id"]))["status"] == "pending"
        assert await db_read("outbox") == []
        assert await db_read("events") == []

    async def test_a_declined_payment_is_recorded_as_failed(
        self, make_client: Any, start_payment: Callable[..., Awaitable[dict[str, Any]]], db_read: Any
    ) -> None:
        client = await make_client()
        payment = await start_payment(client)
        declined = await client.post(
            f"/sandbox/pay/{payment['provider_transaction_id']}", data={"outcome": "decline"}, allow_redirects=False
        )
        assert declined.status == 303
        synced = await _sync(client, payment["payment_id"])
        assert (synced["status"], synced["published"]) == ("failed", True)
        (event,) = await outcome_events(db_read)
        assert event["event_type"] == "provider.payment.failed"
        assert event["data"]["failure_code"] == "card_declined"

    async def test_the_callback_after_the_sync_publishes_nothing(
        self,
        make_client: Any,
        start_payment: Callable[..., Awaitable[dict[str, Any]]],
        sandbox_callback: Callable[..., Any],
        db_read: Any,
    ) -> None:
        client = await make_client()
        payment = await start_payment(client)
        await _lose_the_callback(client, payment["provider_transaction_id"])
        assert (await _sync(client, payment["payment_id"]))["published"] is True
        late = sandbox_callback(payment["provider_transaction_id"])
        response = await client.post("/billing/sandbox", data=late.body, headers=late.headers)
        assert response.status == 200
        assert len(await outcome_events(db_read)) == 1

    async def test_a_sync_racing_the_callback_publishes_once(
        self,
        make_client: Any,
        start_payment: Callable[..., Awaitable[dict[str, Any]]],
        sandbox_callback: Callable[..., Any],
        db_read: Any,
    ) -> None:
        client = await make_client()
        for _ in range(5):
            payment = await start_payment(client)
            await _lose_the_callback(client, payment["provider_transaction_id"])
            callback = sandbox_callback(payment["provider_transaction_id"])
            answers = await asyncio.gather(
                client.post(f"/internal/payments/{payment['payment_id']}/sync", headers=reconciliation_headers()),
                client.post("/billing/sandbox", data=callback.body, headers=callback.headers),
                client.post(f"/internal/payments/{payment['payment_id']}/sync", headers=reconciliation_headers()),
            )
            assert [a.status for a in answers] == [200, 200, 200]
            published = [(await answers[0].json())["published"], (await answers[2].json())["published"]]
            events = [e for e in await outcome_events(db_read) if e["data"]["payment_id"] == payment["payment_id"]]
            assert len(events) == 1
            # The sync published it, or the callback did: never both.
            assert published.count(True) == (1 if events[0]["data"]["observed_via"] == "status_check" else 0)


class TestSyncInput:
    @pytest.mark.parametrize("payment_id", ["pay_unknown", "nope", "pay_" + "x" * 80])
    async def test_an_unknown_payment_is_a_404(self, make_client: Any, payment_id: str) -> None:
        client = await make_client()
        response = await client.post(f"/internal/payments/{payment_id}/sync", headers=reconciliation_headers())
        assert response.status == 404
        assert response.content_type == "application/problem+json"
        assert (await response.json())["code"] == "transaction_not_found"
