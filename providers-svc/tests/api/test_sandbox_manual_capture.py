"""Manual capture with the sandbox: the payer page only authorizes (the bank holds the funds and its
callback is ``payment.authorized``), the capture (all or part) and the release are local to the bank,
and the sync heals a capture whose record was lost. Payme and Click cannot hold funds."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from billing_contracts.statements import StatementRecord
from providers_svc.adapters.sandbox import SIGNATURE_HEADER, sign
from providers_svc.db.models import SandboxChargeRow
from providers_svc.keys import bank_key
from providers_svc.services.statements import ledgers
from sqlalchemy import CheckConstraint

SANDBOX_SECRET = "test-sandbox-secret-0123456789abcdef"  # the conftest settings' key
TENANT_A = "ten_aaaaaaaaaaaaaaaa"

Start = Callable[..., Awaitable[dict[str, Any]]]


async def _deliver_owed_callback(client: Any, db_read: Any) -> Any:
    """Send the bank's owed callback as its sender would (the api role alone runs no sender)."""
    (charge,) = await db_read("charges")
    body = charge["callback_body"].encode()
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(SANDBOX_SECRET, body)}
    return await client.post("/billing/sandbox", data=body, headers=headers)


async def _authorized(client: Any, start_payment: Start, db_read: Any) -> dict[str, Any]:
    payment = await start_payment(client, capture_method="manual")
    ptx = payment["provider_transaction_id"]
    assert (await client.post(f"/sandbox/pay/{ptx}", data={"outcome": "succeed"}, allow_redirects=False)).status == 303
    resp = await _deliver_owed_callback(client, db_read)
    assert resp.status == 200, await resp.text()
    return payment


async def _capture(client: Any, internal_headers: Any, payment: dict[str, Any], amount: int) -> Any:
    return await client.post(
        f"/internal/payments/{payment['payment_id']}/capture",
        json={"provider": "sandbox", "amount": amount, "currency": "USD"},
        headers=internal_headers(TENANT_A),
    )


def _events(rows: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(r["body"]) for r in rows]


class TestAuthorization:
    async def test_the_payers_success_only_authorizes(
        self, make_client: Any, start_payment: Start, db_read: Any
    ) -> None:
        client = await make_client()
        payment = await _authorized(client, start_payment, db_read)
        (charge,) = await db_read("charges")
        assert charge["outcome"] == "authorized"
        assert json.loads(charge["callback_body"])["type"] == "payment.authorized"
        (txn,) = await db_read("transactions")
        assert (txn["status"], txn["capture_method"]) == ("pending", "manual")
        assert txn["authorized_at"] is not None and txn["authorization_expires_at"] is not None
        (event,) = _events(await db_read("outbox"))
        assert event["event_type"] == "provider.payment.authorized"
        assert (event["data"]["payment_id"], event["data"]["amount"]) == (payment["payment_id"], 5000)
        assert event["data"]["authorization_expires_at"] is not None

    async def test_a_repeated_authorization_is_absorbed(
        self, make_client: Any, start_payment: Start, db_read: Any
    ) -> None:
        client = await make_client()
        await _authorized(client, start_payment, db_read)
        assert (await _deliver_owed_callback(client, db_read)).status == 200
        assert len(await db_read("outbox")) == 1

    async def test_the_providers_list_says_who_can_capture_manually(
        self, make_client: Any, internal_headers: Any
    ) -> None:
        client = await make_client()
        offers = (await (await client.get("/internal/providers", headers=internal_headers())).json())["data"]
        assert {o["name"]: o["capture_methods"] for o in offers}["sandbox"] == ["automatic", "manual"]

    @pytest.mark.parametrize("provider", ["payme", "click"])
    async def test_payme_and_click_cannot_start_a_manual_payment(
        self, make_client: Any, internal_headers: Any, payment_request: Any, db_read: Any, provider: str
    ) -> None:
        client = await make_client()
        body = payment_request(provider=provider, currency="UZS", amount=100000, capture_method="manual")
        resp = await client.post("/internal/payments/start", json=body, headers=internal_headers())
        assert (resp.status, (await resp.json())["code"]) == (422, "capture_method_unsupported")
        assert await db_read("transactions") == []


class TestCapture:
    async def test_a_partial_capture_takes_part_of_the_hold(
        self, make_client: Any, start_payment: Start, internal_headers: Any, db_read: Any
    ) -> None:
        client = await make_client()
        payment = await _authorized(client, start_payment, db_read)
        resp = await _capture(client, internal_headers, payment, 3000)
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["amount_captured"] == 3000
        (charge,) = await db_read("charges")
        assert (charge["outcome"], charge["captured_amount"]) == ("captured", 3000)
        (txn,) = await db_read("transactions")
        assert (txn["status"], txn["captured_amount"]) == ("succeeded", 3000)
        events = _events(await db_read("outbox"))
        assert [e["event_type"] for e in events] == ["provider.payment.authorized", "provider.payment.succeeded"]
        assert events[1]["data"]["amount"] == 3000
        # A repeat answers with the capture made; nothing more is published.
        again = await _capture(client, internal_headers, payment, 3000)
        assert (again.status, (await again.json())["amount_captured"]) == (200, 3000)
        assert len(await db_read("outbox")) == 2

    async def test_nothing_held_nothing_captured(
        self, make_client: Any, start_payment: Start, internal_headers: Any, db_read: Any
    ) -> None:
        client = await make_client()
        payment = await start_payment(client, capture_method="manual")
        resp = await _capture(client, internal_headers, payment, 5000)
        assert (resp.status, (await resp.json())["code"]) == (409, "invalid_state")
        automatic = await start_payment(client)
        resp = await _capture(client, internal_headers, automatic, 5000)
        assert resp.status == 409
        assert await db_read("outbox") == []

    async def test_over_the_hold_is_refused(
        self, make_client: Any, start_payment: Start, internal_headers: Any, db_read: Any
    ) -> None:
        client = await make_client()
        payment = await _authorized(client, start_payment, db_read)
        resp = await _capture(client, internal_headers, payment, 5001)
        assert (resp.status, (await resp.json())["code"]) == (422, "amount_exceeds_capturable")
        (charge,) = await db_read("charges")
        assert charge["outcome"] == "authorized"

    async def test_a_lost_capture_record_is_healed_by_the_sync(
        self, make_client: Any, start_payment: Start, internal_headers: Any, db_read: Any
    ) -> None:
        client = await make_client()
        payment = await _authorized(client, start_payment, db_read)
        # The bank captured; our record of it was lost (a crash before the commit).
        assert await client.app[bank_key].capture(payment["provider_transaction_id"], 2000) == 2000
        resp = await client.post(
            f"/internal/payments/{payment['payment_id']}/sync", headers=internal_headers(None, issuer="reconciliation")
        )
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["status"] == "succeeded"
        events = _events(await db_read("outbox"))
        assert (events[-1]["event_type"], events[-1]["data"]["amount"]) == ("provider.payment.succeeded", 2000)


class TestRelease:
    async def test_cancel_releases_the_hold(
        self, make_client: Any, start_payment: Start, internal_headers: Any, db_read: Any
    ) -> None:
        client = await make_client()
        payment = await _authorized(client, start_payment, db_read)
        resp = await client.post(f"/internal/payments/{payment['payment_id']}/cancel", headers=internal_headers())
        assert resp.status == 200, await resp.text()
        (charge,) = await db_read("charges")
        assert charge["outcome"] == "cancelled"
        (txn,) = await db_read("transactions")
        assert txn["status"] == "cancelled"
        resp = await _capture(client, internal_headers, payment, 5000)
        assert resp.status == 409

    async def test_a_captured_hold_is_not_released(
        self, make_client: Any, start_payment: Start, internal_headers: Any, db_read: Any
    ) -> None:
        client = await make_client()
        payment = await _authorized(client, start_payment, db_read)
        assert (await _capture(client, internal_headers, payment, 5000)).status == 200
        resp = await client.post(f"/internal/payments/{payment['payment_id']}/cancel", headers=internal_headers())
        assert (resp.status, (await resp.json())["code"]) == (409, "not_cancellable")


class TestStatement:
    async def test_a_hold_is_pending_and_a_capture_shows_what_it_took(
        self, make_client: Any, start_payment: Start, internal_headers: Any, db_read: Any
    ) -> None:
        # The sandbox bank's statement (reconciliation's) names every outcome its ledger can hold: a
        # statement with a hold or a capture in it was a 500 before (an outcome it had no word for).
        client = await make_client()
        held = await _authorized(client, start_payment, db_read)
        now = datetime.now(UTC)
        period = f"from={(now - timedelta(hours=1)).isoformat()}&to={(now + timedelta(hours=1)).isoformat()}"
        path = f"/internal/statements?account_id=sandbox&{period.replace('+00:00', 'Z')}"
        headers = internal_headers(None, issuer="reconciliation")

        async def lines() -> dict[str, StatementRecord]:
            resp = await client.get(path, headers=headers)
            assert resp.status == 200, await resp.text()
            raw = [json.loads(line) for line in (await resp.text()).splitlines()]
            assert raw[-1] == {"complete": True}
            return {str(r["payment_id"]): StatementRecord.model_validate(r) for r in raw[:-1]}

        line = (await lines())[held["payment_id"]]
        assert (line.status, line.amount) == ("pending", 5000)
        assert (await _capture(client, internal_headers, held, 3000)).status == 200
        line = (await lines())[held["payment_id"]]
        assert (line.status, line.amount) == ("succeeded", 3000)


def test_the_statement_has_a_word_for_every_outcome_the_ledger_allows() -> None:
    [check] = [c for c in SandboxChargeRow.__table__.constraints if isinstance(c, CheckConstraint)]
    allowed = set(re.findall(r"'([a-z_]+)'", str(check.sqltext)))
    assert allowed and set(ledgers.SANDBOX_STATUS) == allowed
