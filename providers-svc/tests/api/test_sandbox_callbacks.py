"""``POST /billing/sandbox``: signature first, then record → move → outbox in one transaction."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from providers_svc.adapters.sandbox import SIGNATURE_HEADER, sign
from providers_svc.services import callbacks

SANDBOX_SECRET = "test-sandbox-secret-0123456789abcdef"  # the conftest settings' key

TENANT_A = "ten_aaaaaaaaaaaaaaaa"


@pytest.fixture
async def started(make_client: Any, start_payment: Callable[..., Awaitable[dict[str, Any]]]) -> tuple[Any, dict]:
    client = await make_client()
    return client, await start_payment(client)


async def post(client: Any, callback: Any) -> Any:
    return await client.post("/billing/sandbox", data=callback.body, headers=callback.headers)


def _race_once(monkeypatch: Any, client: Any, rival: Any) -> None:
    """The next callback's read of its transaction is followed at once by ``rival`` being applied,
    before that callback writes: the transaction moves between its read and its write."""
    real = callbacks.transaction_snapshot

    async def snapshot_then_race(uow: Any, txn_id: str) -> Any:
        snap = await real(uow, txn_id)
        monkeypatch.setattr(callbacks, "transaction_snapshot", real)
        assert (await post(client, rival)).status == 200
        return snap

    monkeypatch.setattr(callbacks, "transaction_snapshot", snapshot_then_race)


class TestSuccessCallback:
    async def test_moves_the_transaction_and_writes_one_event(
        self, started: tuple[Any, dict], sandbox_callback: Any, db_read: Any
    ) -> None:
        client, payment = started
        ptx = payment["provider_transaction_id"]
        callback = sandbox_callback(ptx)
        response = await post(client, callback)
        assert response.status == 200
        assert response.content_type == "application/json"
        assert await response.json() == {"received": True}

        [txn] = await db_read("transactions")
        assert txn["status"] == "succeeded"
        [event_row] = await db_read("events")
        assert (event_row["provider"], event_row["external_id"], event_row["result"]) == (
            "sandbox",
            callback.event_id,
            "applied",
        )
        assert event_row["payload"] == callback.body.decode()
        [row] = await db_read("outbox")
        assert row["routing_key"] == "providers.provider.payment.succeeded.v1"
        event = json.loads(row["body"])
        assert event["event_type"] == "provider.payment.succeeded"
        assert event["tenant_id"] == TENANT_A
        assert event["source"] == "providers"
        assert event["event_id"] == row["event_id"]
        assert event["data"] == {
            "payment_id": payment["payment_id"],
            "provider": "sandbox",
            "provider_transaction_id": ptx,
            "provider_reference": None,
            "amount": 5000,
            "currency": "USD",
            "failure_code": None,
            "failure_message": None,
            "livemode": False,
            "observed_via": "callback",
            "account_id": None,
            "authorization_expires_at": None,
        }
        assert event["livemode"] is False

    async def test_duplicate_is_acknowledged_and_ignored(
        self, started: tuple[Any, dict], sandbox_callback: Any, db_read: Any
    ) -> None:
        client, payment = started
        callback = sandbox_callback(payment["provider_transaction_id"])
        first = await post(client, callback)
        second = await post(client, callback)
        assert first.status == second.status == 200
        assert await second.json() == {"received": True}
        assert len(await db_read("outbox")) == 1
        assert len(await db_read("events")) == 1

    async def test_concurrent_duplicates_write_one_event(
        self, started: tuple[Any, dict], sandbox_callback: Any, db_read: Any
    ) -> None:
        client, payment = started
        callback = sandbox_callback(payment["provider_transaction_id"])
        responses = await asyncio.gather(*(post(client, callback) for _ in range(8)))
        assert {r.status for r in responses} == {200}
        assert len(await db_read("outbox")) == 1
        assert len(await db_read("events")) == 1

    async def test_same_verdict_under_a_new_id_writes_no_second_event(
        self, started: tuple[Any, dict], sandbox_callback: Any, db_read: Any
    ) -> None:
        client, payment = started
        ptx = payment["provider_transaction_id"]
        assert (await post(client, sandbox_callback(ptx, event_id="sbevt_one"))).status == 200
        assert (await post(client, sandbox_callback(ptx, event_id="sbevt_two"))).status == 200
        assert len(await db_read("outbox")) == 1
        results = {row["external_id"]: row["result"] for row in await db_read("events")}
        assert results == {"sbevt_one": "applied", "sbevt_two": "same_outcome"}


class TestFailureCallback:
    async def test_writes_a_failed_event(self, started: tuple[Any, dict], sandbox_callback: Any, db_read: Any) -> None:
        client, payment = started
        callback = sandbox_callback(
            payment["provider_transaction_id"], type_="payment.failed", failure_code="card_declined"
        )
        assert (await post(client, callback)).status == 200
        [txn] = await db_read("transactions")
        assert (txn["status"], txn["failure_code"]) == ("failed", "card_declined")
        [row] = await db_read("outbox")
        assert row["routing_key"] == "providers.provider.payment.failed.v1"
        event = json.loads(row["body"])
        assert event["event_type"] == "provider.payment.failed"
        assert event["tenant_id"] == TENANT_A
        assert event["data"]["payment_id"] == payment["payment_id"]
        assert event["data"]["failure_code"] == "card_declined"
        assert event["data"]["failure_message"] == "The sandbox bank declined the card."

    async def test_conflicting_second_outcome_is_recorded_but_never_flips(
        self, started: tuple[Any, dict], sandbox_callback: Any, db_read: Any
    ) -> None:
        client, payment = started
        ptx = payment["provider_transaction_id"]
        assert (await post(client, sandbox_callback(ptx, event_id="sbevt_ok"))).status == 200
        late = sandbox_callback(ptx, type_="payment.failed", event_id="sbevt_late", failure_code="card_declined")
        response = await post(client, late)
        assert response.status == 200
        [txn] = await db_read("transactions")
        assert (txn["status"], txn["failure_code"]) == ("succeeded", None)
        types = [json.loads(row["body"])["event_type"] for row in await db_read("outbox")]
        # The contradiction is evidence of money, recorded as an anomaly (test_anomalies.py).
        assert sorted(types) == ["provider.anomaly.recorded", "provider.payment.succeeded"]
        results = {row["external_id"]: row["result"] for row in await db_read("events")}
        assert results == {"sbevt_ok": "applied", "sbevt_late": "conflict"}

    async def test_concurrent_contradicting_callbacks_settle_once(
        self, make_client: Any, start_payment: Any, sandbox_callback: Any, db_read: Any
    ) -> None:
        client = await make_client()
        for _ in range(5):
            payment = await start_payment(client)
            ptx = payment["provider_transaction_id"]
            ok = sandbox_callback(ptx, event_id=f"sbevt_ok_{ptx}")
            ko = sandbox_callback(ptx, type_="payment.failed", event_id=f"sbevt_ko_{ptx}")
            responses = await asyncio.gather(post(client, ok), post(client, ko))
            assert {r.status for r in responses} == {200}
        outbox_rows = [r for r in await db_read("outbox") if ".payment." in r["routing_key"]]
        assert len(outbox_rows) == 5
        statuses = {row["id"]: row["status"] for row in await db_read("transactions")}
        for row in outbox_rows:
            event = json.loads(row["body"])
            expected = "succeeded" if event["event_type"] == "provider.payment.succeeded" else "failed"
            assert statuses[event["data"]["provider_transaction_id"]] == expected

    async def test_a_transaction_that_moves_between_read_and_write_is_decided_again(
        self, started: tuple[Any, dict], sandbox_callback: Any, db_read: Any, monkeypatch: Any
    ) -> None:
        client, payment = started
        ptx = payment["provider_transaction_id"]
        ko = sandbox_callback(ptx, type_="payment.failed", event_id="sbevt_ko", failure_code="card_declined")
        _race_once(monkeypatch, client, ko)
        assert (await post(client, sandbox_callback(ptx, event_id="sbevt_ok"))).status == 200

        [txn] = await db_read("transactions")
        assert (txn["status"], txn["failure_code"]) == ("failed", "card_declined")
        types = [json.loads(row["body"])["event_type"] for row in await db_read("outbox")]
        assert sorted(types) == ["provider.anomaly.recorded", "provider.payment.failed"]
        results = {row["external_id"]: row["result"] for row in await db_read("events")}
        assert results == {"sbevt_ko": "applied", "sbevt_ok": "conflict"}

    async def test_a_transaction_that_keeps_moving_is_answered_503_and_nothing_is_written(
        self, started: tuple[Any, dict], sandbox_callback: Any, db_read: Any, monkeypatch: Any
    ) -> None:
        client, payment = started
        ptx = payment["provider_transaction_id"]
        monkeypatch.setattr(callbacks, "NOTICE_ATTEMPTS", 1)
        _race_once(monkeypatch, client, sandbox_callback(ptx, type_="payment.failed", event_id="sbevt_ko"))
        response = await post(client, sandbox_callback(ptx, event_id="sbevt_ok"))

        assert response.status == 503
        assert response.headers["Retry-After"] == "1"
        assert {row["external_id"] for row in await db_read("events")} == {"sbevt_ko"}


class TestRejectedCallbacks:
    @pytest.mark.parametrize(
        "header",
        [
            None,
            "t=1700000000,v1=" + "0" * 64,
            "nonsense",
            "wrong-secret",
            "stale",
            "tampered",
        ],
    )
    async def test_bad_signature_is_400_and_writes_nothing(
        self, started: tuple[Any, dict], sandbox_callback: Any, db_read: Any, header: str | None
    ) -> None:
        client, payment = started
        callback = sandbox_callback(payment["provider_transaction_id"])
        headers = {"Content-Type": "application/json"}
        body = callback.body
        if header == "wrong-secret":
            headers[SIGNATURE_HEADER] = sign("another-secret", body)
        elif header == "stale":
            headers[SIGNATURE_HEADER] = sign(SANDBOX_SECRET, body, int(time.time()) - 301)
        elif header == "tampered":
            headers[SIGNATURE_HEADER] = callback.headers[SIGNATURE_HEADER]
            body = body.replace(b"5000", b"5001")
        elif header is not None:
            headers[SIGNATURE_HEADER] = header
        response = await client.post("/billing/sandbox", data=body, headers=headers)
        assert response.status == 400
        assert response.content_type == "application/json"
        assert await response.json() == {"error": "invalid_signature"}
        assert await db_read("events") == []
        assert await db_read("outbox") == []
        [txn] = await db_read("transactions")
        assert txn["status"] == "pending"

    async def test_unknown_transaction_is_404_and_writes_nothing(
        self, started: tuple[Any, dict], sandbox_callback: Any, db_read: Any
    ) -> None:
        client, _ = started
        response = await post(client, sandbox_callback("ptx_doesnotexist"))
        assert response.status == 404
        assert await response.json() == {"error": "unknown_transaction"}
        assert await db_read("events") == []
        assert await db_read("outbox") == []

    @pytest.mark.parametrize(("amount", "currency"), [(4999, "USD"), (5000, "EUR")])
    async def test_amount_mismatch_is_400_and_moves_nothing(
        self, started: tuple[Any, dict], sandbox_callback: Any, db_read: Any, amount: int, currency: str
    ) -> None:
        client, payment = started
        callback = sandbox_callback(payment["provider_transaction_id"], amount=amount, currency=currency)
        response = await post(client, callback)
        assert response.status == 400
        assert await response.json() == {"error": "amount_mismatch"}
        # Kept as evidence (test_anomalies.py), never as an outcome.
        [event_row] = await db_read("events")
        assert event_row["result"] == "amount_mismatch"
        types = [json.loads(row["body"])["event_type"] for row in await db_read("outbox")]
        assert types == ["provider.anomaly.recorded"]
        [txn] = await db_read("transactions")
        assert txn["status"] == "pending"

    @pytest.mark.parametrize(
        "body",
        [b"not json", b"[]", b'{"id":"x"}', b'{"id":"x","type":"payment.succeeded","transaction":"p","amount":"5"}'],
    )
    async def test_signed_but_invalid_payload_is_400(
        self, started: tuple[Any, dict], db_read: Any, body: bytes
    ) -> None:
        client, _ = started
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(SANDBOX_SECRET, body),
        }
        response = await client.post("/billing/sandbox", data=body, headers=headers)
        assert response.status == 400
        assert await response.json() == {"error": "invalid_payload"}
        assert await db_read("events") == []

    async def test_unknown_event_type_is_recorded_and_ignored(
        self, started: tuple[Any, dict], sandbox_callback: Any, db_read: Any
    ) -> None:
        client, payment = started
        response = await post(client, sandbox_callback(payment["provider_transaction_id"], type_="payment.disputed"))
        assert response.status == 200
        [row] = await db_read("events")
        assert row["result"] == "ignored"
        assert await db_read("outbox") == []
        [txn] = await db_read("transactions")
        assert txn["status"] == "pending"

    async def test_oversized_body_is_413_in_sandbox_format(self, started: tuple[Any, dict]) -> None:
        client, _ = started
        body = b"{" + b" " * (70 * 1024) + b"}"
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(SANDBOX_SECRET, body),
        }
        response = await client.post("/billing/sandbox", data=body, headers=headers)
        assert response.status == 413
        assert await response.json() == {"error": "payload_too_large"}

    async def test_callbacks_are_counted(self, started: tuple[Any, dict], sandbox_callback: Any) -> None:
        client, payment = started
        await post(client, sandbox_callback(payment["provider_transaction_id"]))
        await client.post("/billing/sandbox", data=b"{}", headers={"Content-Type": "application/json"})
        metrics = await (await client.get("/metrics")).text()
        assert 'provider_callbacks_total{provider="sandbox",result="applied"} 1.0' in metrics
        assert 'provider_callbacks_rejected_total{provider="sandbox",reason="bad_signature"} 1.0' in metrics
