"""Refunds through Click's and Octo's simulators, over HTTP against the app as its own gateway (the
simulators are mounted in providers-svc and keep their state in PostgreSQL), and through a fake Octo
that is down and comes back: the refund stays ``requested`` (never failed) until the janitor's sync."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from providers_svc.db.click_simulator import ClickSimulatorReversalRow
from providers_svc.keys import directory_key, refunds_key, uow_factory_key
from providers_svc.simulators.octo import OctoBook, create_octo_app
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from .conftest import TENANT, mark_paid, paid_with_simulator, refund_created

pytestmark = pytest.mark.postgres

Client = TestClient[web.Request, web.Application]
Rows = Callable[[], Awaitable[list[dict[str, Any]]]]


class TestClickSimulatorRefunds:
    async def test_a_full_reversal_succeeds_and_a_repeat_is_the_same_reversal(
        self, own_gateway: Client, internal_headers: Any, refund_events: Rows, engine: AsyncEngine
    ) -> None:
        payment = await paid_with_simulator(own_gateway, internal_headers(TENANT), "click", 250_000)
        refunds = own_gateway.app[refunds_key]
        event = refund_created(payment["payment_id"], provider="click", amount=250_000, currency="UZS")
        assert await refunds.accept(event) == "succeeded"
        [published] = await refund_events()
        assert published["data"]["status"] == "succeeded"
        paydoc = published["data"]["provider_refund_id"]
        assert paydoc.isdigit()
        # Click's reversal asked again (a lost answer): the simulator answers the same reversal.
        async with own_gateway.app[uow_factory_key]() as uow:
            txn = await uow.transactions.get(payment["provider_transaction_id"])
        assert txn is not None and txn.provider_reference == paydoc
        adapter = await own_gateway.app[directory_key].for_transaction(txn)
        assert adapter is not None
        again = await adapter.refund_status(
            txn, refund_id=event.data.refund.id, provider_refund_id=paydoc, amount=250_000
        )
        assert (again.status, again.provider_refund_id) == ("succeeded", paydoc)
        async with engine.connect() as conn:
            reversals = (await conn.execute(select(ClickSimulatorReversalRow.__table__))).mappings().all()
        assert [(r["click_paydoc_id"], r["outcome"]) for r in reversals] == [(int(paydoc), "reversed")]

    async def test_sandbox_fail_is_clicks_refusal(
        self, own_gateway: Client, internal_headers: Any, refund_events: Rows
    ) -> None:
        payment = await paid_with_simulator(own_gateway, internal_headers(TENANT), "click", 250_000)
        event = refund_created(
            payment["payment_id"], provider="click", amount=250_000, currency="UZS", reason="sandbox:fail"
        )
        assert await own_gateway.app[refunds_key].accept(event) == "failed"
        [published] = await refund_events()
        assert published["data"]["failure_code"] == "click_-5019"
        assert "Reversal refused" in published["data"]["failure_message"]

    async def test_a_partial_refund_fails_without_reaching_click(
        self, own_gateway: Client, internal_headers: Any, refund_events: Rows
    ) -> None:
        payment = await paid_with_simulator(own_gateway, internal_headers(TENANT), "click", 250_000)
        event = refund_created(payment["payment_id"], provider="click", amount=1000, currency="UZS")
        assert await own_gateway.app[refunds_key].accept(event) == "failed"
        [published] = await refund_events()
        assert published["data"]["failure_code"] == "click_partial_refund_unsupported"


class TestOctoSimulatorRefunds:
    async def test_refunds_succeed_fail_or_stay_pending_as_the_reason_says(
        self, own_gateway: Client, internal_headers: Any, refund_events: Rows
    ) -> None:
        payment = await paid_with_simulator(own_gateway, internal_headers(TENANT), "octo", 1_000_000)
        refunds = own_gateway.app[refunds_key]
        ok = refund_created(payment["payment_id"], provider="octo", amount=200_000, currency="UZS")
        declined = refund_created(
            payment["payment_id"], provider="octo", amount=200_000, currency="UZS", reason="sandbox:fail"
        )
        slow = refund_created(
            payment["payment_id"], provider="octo", amount=200_000, currency="UZS", reason="sandbox:pending"
        )
        assert await refunds.accept(ok) == "succeeded"
        assert await refunds.accept(declined) == "failed"
        assert await refunds.accept(slow) == "pending"
        janitor = internal_headers(None, issuer="reconciliation")
        synced = await own_gateway.post(f"/internal/refunds/{slow.data.refund.id}/sync", headers=janitor)
        assert await synced.json() == {"refund_id": slow.data.refund.id, "status": "succeeded", "published": True}
        by_refund = [(e["data"]["refund_id"], e["data"]["status"]) for e in await refund_events()]
        assert by_refund == [
            (ok.data.refund.id, "succeeded"),
            (declined.data.refund.id, "failed"),
            (slow.data.refund.id, "pending"),
            (slow.data.refund.id, "succeeded"),
        ]
        # More than remains at Octo (two refunds of 200 000 made; the declined one took nothing): refused.
        too_much = refund_created(payment["payment_id"], provider="octo", amount=700_000, currency="UZS")
        assert await refunds.accept(too_much) == "failed"
        assert (await refund_events())[-1]["data"]["failure_code"] == "octo_refund_amount_refused"


class TestUnreachableProvider:
    async def test_an_unreachable_octo_leaves_the_refund_requested_until_the_sync(
        self,
        aiohttp_server: Callable[..., Awaitable[TestServer]],
        make_client: Any,
        internal_headers: Any,
        engine: AsyncEngine,
        refunds_of: Rows,
        refund_events: Rows,
    ) -> None:
        shop_id, secret = 4243, "octo-shop-secret-for-refund-tests"
        book = OctoBook(shops={shop_id: secret})
        down = {"now": False}

        @web.middleware
        async def outage(request: web.Request, handler: Any) -> web.StreamResponse:
            if down["now"]:
                return web.Response(status=503)
            response: web.StreamResponse = await handler(request)
            return response

        octo_app = create_octo_app(book)
        octo_app.middlewares.append(outage)
        server = await aiohttp_server(octo_app)
        client = await make_client(enabled_providers=["sandbox", "octo"])
        admin = internal_headers(None, issuer="gateway")
        created = await client.post(
            "/admin/provider-accounts",
            json={
                "provider": "octo",
                "name": "Shop Octo (test)",
                "environment": "test",
                "currencies": ["UZS"],
                "credentials": {"shop_id": str(shop_id), "secret": secret},
                "settings": {"api_base": str(server.make_url("")).rstrip("/")},
            },
            headers=admin,
        )
        assert created.status == 201, await created.text()
        assigned = await client.put(
            f"/admin/tenants/{TENANT}/provider-accounts/octo",
            json={"provider_account_id": (await created.json())["id"]},
            headers=internal_headers(TENANT, issuer="gateway"),
        )
        assert assigned.status == 200
        body = {
            "payment_id": "pay_octodown0001",
            "provider": "octo",
            "amount": 300_000,
            "currency": "UZS",
            "return_url": "http://127.0.0.1:8080/r",
        }
        started = await (await client.post("/internal/payments/start", json=body, headers=internal_headers())).json()
        book.pay(started["provider_reference"])
        await mark_paid(engine, started["provider_transaction_id"])

        down["now"] = True
        event = refund_created("pay_octodown0001", provider="octo", amount=300_000, currency="UZS")
        assert await client.app[refunds_key].accept(event) == "requested"
        [row] = await refunds_of()
        assert (row["status"], row["attempts"], row["published_status"]) == ("requested", 1, None)
        assert row["next_attempt_at"] > datetime.now(UTC)
        assert await refund_events() == []
        janitor = internal_headers(None, issuer="reconciliation")
        still_down = await client.post(f"/internal/refunds/{event.data.refund.id}/sync", headers=janitor)
        assert still_down.status == 503
        assert (await still_down.json())["code"] == "provider_unavailable"
        assert (await refunds_of())[0]["status"] == "requested"

        down["now"] = False
        synced = await client.post(f"/internal/refunds/{event.data.refund.id}/sync", headers=janitor)
        assert await synced.json() == {"refund_id": event.data.refund.id, "status": "succeeded", "published": True}
        [published] = await refund_events()
        assert (published["data"]["status"], published["data"]["observed_via"]) == ("succeeded", "status_check")
        # One refund at Octo, whatever the number of attempts (shop_refund_id = our refund id).
        [payment] = book.payments.values()
        assert list(payment.refunds) == [event.data.refund.id]
