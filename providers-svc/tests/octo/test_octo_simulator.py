"""The Octo simulator mounted in providers-svc (``/simulators/octo``): a test tenant without an Octo
account pays through the simulator account; the payer page pays or declines, the fake posts Octo's
signed notify to ``/billing/octo``, which asks the fake's status call and moves the transaction. The
fake's state is in PostgreSQL, so another api process serves the same payments. Anything but a test
transaction of the simulator account gets a 403 page and nothing happens."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from billing_runtime.bus import MemoryBus
from providers_svc.app import create_app
from providers_svc.db.models import ProviderAccountRow, ProviderTransactionRow
from providers_svc.db.octo import OctoSimulatorPaymentRow
from providers_svc.settings import Settings
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from .conftest import TENANT, closed_port

pytestmark = pytest.mark.postgres

Gateway = Callable[[], Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def gateway(aiohttp_client: Any, settings: Settings, engine: AsyncEngine, bus: MemoryBus) -> Gateway:
    """An api process of providers-svc that is its own public gateway (callbacks, pay links point to
    it), as the gateway's relay of /billing/* and /simulators/* would make it; several may run."""

    async def make() -> TestClient[Any, Any]:
        port = closed_port()
        own = settings.model_copy(
            update={"public_gateway_url": f"http://127.0.0.1:{port}", "enabled_providers": ["sandbox", "octo"]}
        )
        app = create_app(own, engine=engine, bus=bus, roles=("api",))
        client: TestClient[Any, Any] = await aiohttp_client(app, server_kwargs={"port": port})
        return client

    return make


async def _start(client: Any, internal_headers: Any, payment_request: Any, **fields: Any) -> dict[str, Any]:
    body = payment_request(provider="octo", currency="UZS", amount=150010, **fields)
    resp = await client.post("/internal/payments/start", json=body, headers=internal_headers(TENANT))
    assert resp.status == 200, await resp.text()
    started: dict[str, Any] = await resp.json()
    return started


def _page(started: dict[str, Any]) -> str:
    return "/simulators/octo/pay/" + str(started["provider_reference"])


async def _fake_status(engine: AsyncEngine, uuid: str) -> str:
    async with engine.connect() as conn:
        status: str = (
            await conn.execute(select(OctoSimulatorPaymentRow.status).where(OctoSimulatorPaymentRow.uuid == uuid))
        ).scalar_one()
    return status


class TestPayerPage:
    async def test_a_paid_payment_succeeds(
        self, gateway: Gateway, internal_headers: Any, payment_request: Any, db_read: Any, engine: AsyncEngine
    ) -> None:
        client = await gateway()
        offered = await client.get("/internal/providers?currency=UZS", headers=internal_headers(TENANT))
        assert {
            "name": "octo",
            "display_name": "Octo (simulator)",
            "simulator": True,
            "livemode": False,
            "capture_methods": ["automatic", "manual"],
        } in (await offered.json())["data"]
        started = await _start(client, internal_headers, payment_request)
        assert started["redirect_url"] == f"{client.make_url('')}".rstrip("/") + _page(started)
        page = await client.get(_page(started))
        assert page.status == 200
        assert "1,500.10 UZS" in await page.text()
        resp = await client.post(_page(started), data={"outcome": "pay"}, allow_redirects=False)
        assert resp.status == 303
        assert resp.headers["Location"] == payment_request()["return_url"]
        [txn] = await db_read("transactions")
        assert (txn["status"], txn["account_id"]) == ("succeeded", "pac_simulator_octo")
        [row] = await db_read("outbox")
        assert json.loads(row["body"])["event_type"] == "provider.payment.succeeded"
        assert await _fake_status(engine, started["provider_reference"]) == "succeeded"
        # Paid once: the page says so and a second choice changes nothing.
        again = await client.post(_page(started), data={"outcome": "decline"}, allow_redirects=False)
        assert again.status == 409
        assert len(await db_read("outbox")) == 1

    async def test_without_a_return_url_the_payer_comes_back_to_our_return_page(
        self, gateway: Gateway, internal_headers: Any, payment_request: Any
    ) -> None:
        client = await gateway()
        declined = await _start(client, internal_headers, payment_request, return_url=None)
        started = await _start(client, internal_headers, payment_request, return_url=None)
        ours = "/pay/octo/" + started["provider_transaction_id"]
        # Before paying: the page says it is not confirmed yet; never the notify URL (/billing/octo).
        waiting = await client.get(ours)
        assert (waiting.status, waiting.headers["Cache-Control"]) == (200, "no-store")
        assert "Payment being confirmed" in await waiting.text()
        resp = await client.post(_page(started), data={"outcome": "pay"}, allow_redirects=False)
        assert resp.status == 303
        assert resp.headers["Location"] == f"{client.make_url('')}".rstrip("/") + ours
        paid = await client.get(ours)
        assert "Payment received" in await paid.text()
        await client.post(_page(declined), data={"outcome": "decline"}, allow_redirects=False)
        failed = await client.get("/pay/octo/" + declined["provider_transaction_id"])
        assert "Payment not completed" in await failed.text()

    async def test_the_return_page_knows_only_octo_transactions(
        self, gateway: Gateway, internal_headers: Any, payment_request: Any
    ) -> None:
        client = await gateway()
        body = payment_request(provider="sandbox", currency="UZS")
        resp = await client.post("/internal/payments/start", json=body, headers=internal_headers(TENANT))
        sandbox = (await resp.json())["provider_transaction_id"]
        for path in (f"/pay/octo/{sandbox}", "/pay/octo/ptx_nothing", "/pay/octo/%00", "/pay/octo/" + "a" * 5000):
            page = await client.get(path)
            assert page.status == 404, path
            assert "Payment not found" in await page.text()

    async def test_a_declined_payment_fails(
        self, gateway: Gateway, internal_headers: Any, payment_request: Any, db_read: Any
    ) -> None:
        client = await gateway()
        started = await _start(client, internal_headers, payment_request)
        resp = await client.post(_page(started), data={"outcome": "decline"}, allow_redirects=False)
        assert resp.status == 303
        [txn] = await db_read("transactions")
        assert (txn["status"], txn["failure_code"]) == ("failed", "octo_canceled")

    @pytest.mark.parametrize("outcome", ["cancel", "timeout"])
    async def test_a_cancelled_or_timed_out_payment_fails_the_attempt_only(
        self,
        gateway: Gateway,
        internal_headers: Any,
        payment_request: Any,
        db_read: Any,
        engine: AsyncEngine,
        outcome: str,
    ) -> None:
        # The payer abandons Octo's page, or its ttl lapses (compressed): Octo cancels and notifies.
        client = await gateway()
        started = await _start(client, internal_headers, payment_request)
        html = await (await client.get(_page(started))).text()
        assert f'name="outcome" value="{outcome}"' in html
        resp = await client.post(_page(started), data={"outcome": outcome}, allow_redirects=False)
        assert resp.status == 303, await resp.text()
        assert resp.headers["Location"] == payment_request()["return_url"]
        assert await _fake_status(engine, started["provider_reference"]) == "canceled"
        [txn] = await db_read("transactions")
        assert (txn["status"], txn["failure_code"]) == ("failed", "octo_canceled")
        # Octo's notify said canceled (its status call agreed): recorded once, the attempt failed and
        # nothing was published as a success; payments-svc takes the failed attempt, the payment stays payable.
        [event] = await db_read("events")
        assert event["external_id"] == f"{started['provider_reference']}:canceled"
        assert json.loads(event["payload"])["status"] == "canceled"
        [row] = await db_read("outbox")
        published = json.loads(row["body"])
        assert published["event_type"] == "provider.payment.failed"
        assert published["data"]["failure_code"] == "octo_canceled"
        # The page now says the payment is closed, and no choice changes it any more.
        assert "canceled" in await (await client.get(_page(started))).text()
        again = await client.post(_page(started), data={"outcome": "pay"}, allow_redirects=False)
        assert again.status == 409
        assert len(await db_read("outbox")) == 1

    async def test_a_hold_the_tenant_left_undecided_lapses(
        self, gateway: Gateway, internal_headers: Any, payment_request: Any, db_read: Any, engine: AsyncEngine
    ) -> None:
        # Manual capture: the payer's money is held until the tenant decides; it never does, and Octo
        # releases the hold (§3.3), cancelling the payment and notifying canceled.
        client = await gateway()
        started = await _start(client, internal_headers, payment_request, capture_method="manual")
        resp = await client.post(_page(started), data={"outcome": "pay"}, allow_redirects=False)
        assert resp.status == 303, await resp.text()
        assert await _fake_status(engine, started["provider_reference"]) == "waiting_for_capture"
        [txn] = await db_read("transactions")
        assert txn["status"] == "pending" and txn["authorized_at"] is not None
        held = await (await client.get(_page(started))).text()
        assert 'value="timeout"' in held and 'value="pay"' not in held
        resp = await client.post(_page(started), data={"outcome": "timeout"}, allow_redirects=False)
        assert resp.status == 303, await resp.text()
        assert await _fake_status(engine, started["provider_reference"]) == "canceled"
        [txn] = await db_read("transactions")
        assert (txn["status"], txn["failure_code"]) == ("failed", "octo_canceled")
        published = [json.loads(row["body"])["event_type"] for row in await db_read("outbox")]
        assert published == ["provider.payment.authorized", "provider.payment.failed"]

    async def test_two_stage_is_captured_by_our_answer(
        self, gateway: Gateway, internal_headers: Any, payment_request: Any, db_read: Any, engine: AsyncEngine
    ) -> None:
        client = await gateway()
        await client.get("/internal/providers", headers=internal_headers(TENANT))  # creates the simulator account
        async with engine.begin() as conn:
            settings = (
                await conn.execute(select(ProviderAccountRow.settings).where(ProviderAccountRow.simulator))
            ).scalar_one()
            await conn.execute(
                update(ProviderAccountRow)
                .where(ProviderAccountRow.simulator)
                .values(settings={**settings, "auto_capture": "false"})
            )
        started = await _start(client, internal_headers, payment_request)
        assert "Two-stage" in await (await client.get(_page(started))).text()
        resp = await client.post(_page(started), data={"outcome": "pay"}, allow_redirects=False)
        assert resp.status == 303
        [txn] = await db_read("transactions")
        assert txn["status"] == "succeeded"
        assert await _fake_status(engine, started["provider_reference"]) == "succeeded"
        events = await db_read("events")
        assert [e["external_id"].split(":")[1] for e in events] == ["succeeded"]  # the repeat deduped

    async def test_concurrent_choices_take_one(
        self, gateway: Gateway, internal_headers: Any, payment_request: Any, db_read: Any
    ) -> None:
        client = await gateway()
        started = await _start(client, internal_headers, payment_request)
        answers = await asyncio.gather(
            *(client.post(_page(started), data={"outcome": o}, allow_redirects=False) for o in ["pay", "decline"] * 4)
        )
        assert sorted(a.status for a in answers) == [303] + [409] * 7
        [txn] = await db_read("transactions")
        assert txn["status"] in ("succeeded", "failed")
        assert len(await db_read("outbox")) == 1


class TestRefusals:
    async def test_a_live_transaction_gets_a_403_and_nothing(
        self, gateway: Gateway, internal_headers: Any, payment_request: Any, db_read: Any, engine: AsyncEngine
    ) -> None:
        client = await gateway()
        started = await _start(client, internal_headers, payment_request)
        async with engine.begin() as conn:
            await conn.execute(update(ProviderTransactionRow).values(livemode=True))
        assert (await client.get(_page(started))).status == 403
        resp = await client.post(_page(started), data={"outcome": "pay"}, allow_redirects=False)
        assert resp.status == 403
        assert "test payments only" in await resp.text()
        assert await _fake_status(engine, started["provider_reference"]) == "created"
        assert await db_read("outbox") == []

    async def test_a_transaction_of_another_account_gets_a_403(
        self, gateway: Gateway, internal_headers: Any, payment_request: Any, engine: AsyncEngine
    ) -> None:
        client = await gateway()
        started = await _start(client, internal_headers, payment_request)
        async with engine.begin() as conn:
            await conn.execute(update(ProviderTransactionRow).values(account_id="pac_someone_else"))
        resp = await client.post(_page(started), data={"outcome": "pay"}, allow_redirects=False)
        assert resp.status == 403
        assert await _fake_status(engine, started["provider_reference"]) == "created"

    async def test_unknown_links_and_choices(
        self, gateway: Gateway, internal_headers: Any, payment_request: Any
    ) -> None:
        client = await gateway()
        assert (await client.get("/simulators/octo/pay/not-a-payment")).status == 404
        started = await _start(client, internal_headers, payment_request)
        assert (await client.post(_page(started), data={"outcome": "steal"})).status == 400
        # A multipart form without its boundary is no choice either, not a 500 (found by schemathesis).
        broken = {"Content-Type": "multipart/form-data"}
        assert (await client.post(_page(started), data=b"outcome=pay", headers=broken)).status == 400
        page = await client.get("/simulators/octo/pay/%3Cscript%3E")
        assert "<script>" not in await page.text()

    async def test_the_fake_api_knows_only_the_simulator_shop(self, gateway: Gateway) -> None:
        client = await gateway()
        resp = await client.post(
            "/simulators/octo/prepare_payment",
            json={"octo_shop_id": 1, "octo_secret": "guess", "shop_transaction_id": "ptx_x"},
        )
        assert await resp.json() == {"error": 2, "errMessage": "Wrong secret", "data": None}


class TestSharedState:
    async def test_another_api_process_serves_the_same_payment(
        self, gateway: Gateway, internal_headers: Any, payment_request: Any, db_read: Any
    ) -> None:
        first, second = await gateway(), await gateway()
        started = await _start(first, internal_headers, payment_request)
        # The payer's browser (or a gateway's relay) reaches another process: it knows the payment.
        resp = await second.post(_page(started), data={"outcome": "pay"}, allow_redirects=False)
        assert resp.status == 303
        [txn] = await db_read("transactions")
        assert txn["status"] == "succeeded"
