"""Evidence of money (PRV-11): a verified callback the transaction cannot take is kept as an anomaly
(row linked to the raw event, metric, ``provider.anomaly.recorded`` in the outbox), once per event."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

TENANT_A = "ten_aaaaaaaaaaaaaaaa"


@pytest.fixture
async def started(make_client: Any, start_payment: Callable[..., Awaitable[dict[str, Any]]]) -> tuple[Any, dict]:
    client = await make_client()
    return client, await start_payment(client)


async def post(client: Any, callback: Any) -> Any:
    return await client.post("/billing/sandbox", data=callback.body, headers=callback.headers)


async def anomaly_events(db_read: Any) -> list[dict[str, Any]]:
    rows = [r for r in await db_read("outbox") if r["routing_key"] == "providers.provider.anomaly.recorded.v1"]
    return [json.loads(r["body"]) for r in rows]


async def anomaly_metric(client: Any, kind: str) -> str | None:
    prefix = f'provider_anomalies_total{{kind="{kind}",provider="sandbox"}} '
    for line in (await (await client.get("/metrics")).text()).splitlines():
        if line.startswith(prefix):
            return line.removeprefix(prefix)
    return None


class TestMoneyMismatch:
    @pytest.mark.parametrize(
        ("amount", "currency", "kind"), [(4999, "USD", "amount_mismatch"), (5000, "EUR", "currency_mismatch")]
    )
    async def test_is_recorded_once_with_its_raw_event(
        self,
        started: tuple[Any, dict],
        sandbox_callback: Any,
        db_read: Any,
        amount: int,
        currency: str,
        kind: str,
    ) -> None:
        client, payment = started
        ptx = payment["provider_transaction_id"]
        callback = sandbox_callback(ptx, amount=amount, currency=currency)
        for _ in range(3):
            response = await post(client, callback)
            # The provider hears the same refusal on every repeat.
            assert response.status == 400
            assert await response.json() == {"error": "amount_mismatch"}

        [event_row] = await db_read("events")
        assert event_row["payload"] == callback.body.decode()
        [anomaly] = await db_read("anomalies")
        assert anomaly["kind"] == kind
        assert anomaly["provider_event_id"] == event_row["id"]
        assert (anomaly["transaction_id"], anomaly["payment_id"], anomaly["tenant_id"]) == (
            ptx,
            payment["payment_id"],
            TENANT_A,
        )
        assert (anomaly["amount"], anomaly["currency"]) == (amount, currency)
        assert (anomaly["expected_amount"], anomaly["expected_currency"]) == (5000, "USD")
        assert (anomaly["outcome"], anomaly["transaction_status"], anomaly["livemode"]) == (
            "succeeded",
            "pending",
            False,
        )

        [event] = await anomaly_events(db_read)
        assert (event["event_type"], event["source"], event["tenant_id"], event["livemode"]) == (
            "provider.anomaly.recorded",
            "providers",
            TENANT_A,
            False,
        )
        assert event["causation_id"] == event_row["id"]
        data = event["data"]
        assert data["anomaly_id"] == anomaly["id"]
        assert data["evidence_id"] == event_row["id"]
        assert (data["kind"], data["payment_id"], data["provider"], data["provider_transaction_id"]) == (
            kind,
            payment["payment_id"],
            "sandbox",
            ptx,
        )
        assert (data["amount"], data["currency"], data["expected_amount"], data["expected_currency"]) == (
            amount,
            currency,
            5000,
            "USD",
        )
        assert await anomaly_metric(client, kind) == "1.0"
        [txn] = await db_read("transactions")
        assert txn["status"] == "pending"

    async def test_the_right_money_after_a_mismatch_still_settles(
        self, started: tuple[Any, dict], sandbox_callback: Any, db_read: Any
    ) -> None:
        client, payment = started
        ptx = payment["provider_transaction_id"]
        assert (await post(client, sandbox_callback(ptx, amount=1))).status == 400
        assert (await post(client, sandbox_callback(ptx))).status == 200
        [txn] = await db_read("transactions")
        assert txn["status"] == "succeeded"
        assert len(await db_read("anomalies")) == 1


class TestVerdictForAFinalTransaction:
    async def test_success_for_a_failed_transaction(
        self, started: tuple[Any, dict], sandbox_callback: Any, db_read: Any
    ) -> None:
        client, payment = started
        ptx = payment["provider_transaction_id"]
        decline = sandbox_callback(ptx, type_="payment.failed", event_id="sbevt_ko", failure_code="card_declined")
        assert (await post(client, decline)).status == 200
        late = sandbox_callback(ptx, event_id="sbevt_late_ok")
        for _ in range(2):
            assert (await post(client, late)).status == 200

        [anomaly] = await db_read("anomalies")
        assert (anomaly["kind"], anomaly["outcome"], anomaly["transaction_status"]) == (
            "success_for_final_payment",
            "succeeded",
            "failed",
        )
        evidence = {row["external_id"]: row for row in await db_read("events")}
        assert anomaly["provider_event_id"] == evidence["sbevt_late_ok"]["id"]
        assert evidence["sbevt_late_ok"]["result"] == "conflict"
        [event] = await anomaly_events(db_read)
        assert event["data"]["kind"] == "success_for_final_payment"
        assert await anomaly_metric(client, "success_for_final_payment") == "1.0"
        [txn] = await db_read("transactions")
        assert txn["status"] == "failed"

    async def test_success_for_a_cancelled_transaction(
        self, started: tuple[Any, dict], sandbox_callback: Any, db_read: Any, internal_headers: Any
    ) -> None:
        client, payment = started
        ptx = payment["provider_transaction_id"]
        cancel = await client.post(f"/internal/payments/{payment['payment_id']}/cancel", headers=internal_headers())
        assert cancel.status == 200
        assert (await post(client, sandbox_callback(ptx))).status == 200
        [anomaly] = await db_read("anomalies")
        assert (anomaly["kind"], anomaly["transaction_status"]) == ("success_for_final_payment", "cancelled")

    async def test_a_decline_of_a_paid_transaction(
        self, started: tuple[Any, dict], sandbox_callback: Any, db_read: Any
    ) -> None:
        client, payment = started
        ptx = payment["provider_transaction_id"]
        assert (await post(client, sandbox_callback(ptx))).status == 200
        assert (await post(client, sandbox_callback(ptx, type_="payment.failed"))).status == 200
        [anomaly] = await db_read("anomalies")
        assert (anomaly["kind"], anomaly["outcome"], anomaly["transaction_status"]) == (
            "unexpected_outcome",
            "failed",
            "succeeded",
        )

    @pytest.mark.parametrize("first", ["payment.succeeded", "payment.failed"])
    async def test_the_same_verdict_again_is_no_anomaly(
        self, started: tuple[Any, dict], sandbox_callback: Any, db_read: Any, first: str
    ) -> None:
        client, payment = started
        ptx = payment["provider_transaction_id"]
        assert (await post(client, sandbox_callback(ptx, type_=first))).status == 200
        assert (await post(client, sandbox_callback(ptx, type_=first))).status == 200
        assert await db_read("anomalies") == []
        assert await anomaly_events(db_read) == []

    async def test_a_decline_of_a_cancelled_transaction_is_no_anomaly(
        self, started: tuple[Any, dict], sandbox_callback: Any, db_read: Any, internal_headers: Any
    ) -> None:
        client, payment = started
        ptx = payment["provider_transaction_id"]
        cancel = await client.post(f"/internal/payments/{payment['payment_id']}/cancel", headers=internal_headers())
        assert cancel.status == 200
        assert (await post(client, sandbox_callback(ptx, type_="payment.failed"))).status == 200
        assert await db_read("anomalies") == []
