"""The sandbox payer page: shows the payment, records the payer's choice, 303s back to the shop."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

RETURN_URL = "http://127.0.0.1:8080/c/tok_1/return"


class TestPayPage:
    async def test_shows_amount_currency_and_three_buttons(
        self, make_client: Any, start_payment: Callable[..., Awaitable[dict[str, Any]]]
    ) -> None:
        client = await make_client()
        payment = await start_payment(client, amount=123456, currency="UZS")
        response = await client.get(f"/sandbox/pay/{payment['provider_transaction_id']}")
        assert response.status == 200
        assert response.content_type == "text/html"
        assert response.headers["Cache-Control"] == "no-store"
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        html = await response.text()
        assert "1,234.56 UZS" in html
        for value in ("succeed", "decline", "pending"):
            assert f'name="outcome" value="{value}"' in html

    async def test_escapes_everything(
        self, make_client: Any, start_payment: Callable[..., Awaitable[dict[str, Any]]]
    ) -> None:
        client = await make_client()
        payment = await start_payment(
            client, description='<script>alert("x")</script>', order_id='"><img src=x onerror=alert(1)>'
        )
        html = await (await client.get(f"/sandbox/pay/{payment['provider_transaction_id']}")).text()
        assert "<script>alert" not in html
        assert "<img src=x" not in html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html

    async def test_unknown_transaction_is_a_404_page(self, make_client: Any) -> None:
        client = await make_client()
        response = await client.get("/sandbox/pay/ptx_unknown")
        assert response.status == 404
        assert response.content_type == "text/html"
        assert "not valid" in await response.text()
        posted = await client.post("/sandbox/pay/ptx_unknown", data={"outcome": "succeed"})
        assert posted.status == 404

    async def test_expired_transaction_shows_a_message_and_records_nothing(
        self, make_client: Any, start_payment: Callable[..., Awaitable[dict[str, Any]]], db_read: Any
    ) -> None:
        client = await make_client()
        past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
        payment = await start_payment(client, expires_at=past)
        path = f"/sandbox/pay/{payment['provider_transaction_id']}"
        page = await client.get(path)
        assert page.status == 200
        assert "expired" in await page.text()
        posted = await client.post(path, data={"outcome": "succeed"}, allow_redirects=False)
        assert posted.status == 200
        assert "expired" in await posted.text()
        assert await db_read("charges") == []

    async def test_decided_transaction_shows_a_message(
        self, make_client: Any, start_payment: Callable[..., Awaitable[dict[str, Any]]], db_read: Any
    ) -> None:
        client = await make_client()
        payment = await start_payment(client)
        path = f"/sandbox/pay/{payment['provider_transaction_id']}"
        first = await client.post(path, data={"outcome": "succeed"}, allow_redirects=False)
        assert first.status == 303
        second = await client.post(path, data={"outcome": "decline"}, allow_redirects=False)
        assert second.status == 200
        html = await second.text()
        assert "already been completed" in html
        assert f'href="{RETURN_URL}"' in html
        [charge] = await db_read("charges")
        assert charge["outcome"] == "succeed"
        assert "already been completed" in await (await client.get(path)).text()

    async def test_invalid_choice_is_400(
        self, make_client: Any, start_payment: Callable[..., Awaitable[dict[str, Any]]], db_read: Any
    ) -> None:
        client = await make_client()
        payment = await start_payment(client)
        response = await client.post(f"/sandbox/pay/{payment['provider_transaction_id']}", data={"outcome": "steal"})
        assert response.status == 400
        assert await db_read("charges") == []


class TestPayerChoice:
    @pytest.mark.parametrize(
        ("outcome", "type_", "delay"),
        [
            ("succeed", "payment.succeeded", 0.0),
            ("decline", "payment.failed", 0.0),
            ("pending", "payment.succeeded", 0.3),
        ],
    )
    async def test_records_the_choice_and_redirects(
        self,
        make_client: Any,
        start_payment: Callable[..., Awaitable[dict[str, Any]]],
        db_read: Any,
        outcome: str,
        type_: str,
        delay: float,
    ) -> None:
        client = await make_client()
        payment = await start_payment(client)
        ptx = payment["provider_transaction_id"]
        before = datetime.now(UTC)
        response = await client.post(f"/sandbox/pay/{ptx}", data={"outcome": outcome}, allow_redirects=False)
        assert response.status == 303
        assert response.headers["Location"] == RETURN_URL
        [charge] = await db_read("charges")
        assert charge["outcome"] == outcome
        assert charge["delivered_at"] is None
        assert charge["attempts"] == 0
        due_in = (charge["due_at"] - before).total_seconds()
        assert delay - 0.05 <= due_in <= delay + 1
        body = json.loads(charge["callback_body"])
        assert body["id"] == charge["event_id"]
        assert body["id"].startswith("sbevt_")
        assert (body["type"], body["transaction"], body["amount"], body["currency"]) == (type_, ptx, 5000, "USD")
        assert body.get("failure_code") == ("card_declined" if outcome == "decline" else None)
        # The bank never moves the transaction itself: only its callback does.
        [txn] = await db_read("transactions")
        assert txn["status"] == "pending"

    async def test_without_return_url_shows_a_confirmation(
        self, make_client: Any, start_payment: Callable[..., Awaitable[dict[str, Any]]]
    ) -> None:
        client = await make_client()
        payment = await start_payment(client, return_url=None)
        response = await client.post(
            f"/sandbox/pay/{payment['provider_transaction_id']}", data={"outcome": "succeed"}, allow_redirects=False
        )
        assert response.status == 200
        assert "recorded" in await response.text()


class TestMalformedForms:
    @pytest.mark.parametrize(
        "path",
        # The Octo simulator's page: tests/octo/test_octo_simulator.py (it needs Octo's settings).
        ["/sandbox/pay/ptx_1", "/simulators/payme/pay/ptx_1", "/simulators/click/pay/ptx_1"],
    )
    async def test_multipart_without_a_boundary_is_no_choice_not_a_500(self, make_client: Any, path: str) -> None:
        # Found by schemathesis (tests/e2e/test_openapi_fuzz.py): aiohttp's form reader raised out of the page.
        client = await make_client()
        response = await client.post(path, data=b"outcome=succeed", headers={"Content-Type": "multipart/form-data"})
        assert response.status == 400
        assert response.content_type == "text/html"
