"""The sync against the Click and Octo simulators, over HTTP: the payer pays but the provider's
callback is lost ("Pay, but lose ..." on the simulator's page), the provider's status call (Click's
Merchant API ``status_by_mti``, Octo's status call) says paid, and the sync records and publishes
it once, as the callback would have. The app is its own gateway (the simulators call it back)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from billing_contracts.statements import StatementRecord
from billing_runtime.bus import MemoryBus
from billing_runtime.testing import free_port
from providers_svc.app import create_app
from providers_svc.db.click import ClickReservationRow
from providers_svc.settings import Settings
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from .conftest import outcome_events, reconciliation_headers

pytestmark = pytest.mark.postgres

TENANT = "ten_simulatedsync001"
Gateway = Callable[..., Any]


@pytest.fixture
def own_gateway(aiohttp_client: Any, engine: AsyncEngine, bus: MemoryBus, settings: Settings) -> Gateway:
    async def make(provider: str) -> TestClient[Any, Any]:
        port = free_port()
        app_settings = settings.model_copy(
            update={"enabled_providers": ["sandbox", provider], "public_gateway_url": f"http://127.0.0.1:{port}"}
        )
        app = create_app(app_settings, engine=engine, bus=bus, roles=("api",))
        client: TestClient[Any, Any] = await aiohttp_client(app, server_kwargs={"port": port})
        return client

    return make


async def _start(client: Any, internal_headers: Any, payment_request: Any, provider: str) -> dict[str, Any]:
    body = payment_request(provider=provider, currency="UZS", amount=150010)
    response = await client.post("/internal/payments/start", json=body, headers=internal_headers(TENANT))
    assert response.status == 200, await response.text()
    started: dict[str, Any] = await response.json()
    started["payment_id"] = body["payment_id"]
    return started


def _page(started: dict[str, Any]) -> str:
    url = str(started["redirect_url"])
    return url[url.index("/simulators/") :]


async def _sync(client: Any, payment_id: str) -> dict[str, Any]:
    response = await client.post(f"/internal/payments/{payment_id}/sync", headers=reconciliation_headers())
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


class TestClickSimulator:
    async def test_a_lost_complete_is_healed_once_and_the_attempt_confirmed(
        self, own_gateway: Gateway, internal_headers: Any, payment_request: Any, db_read: Any, engine: AsyncEngine
    ) -> None:
        client = await own_gateway("click")
        started = await _start(client, internal_headers, payment_request, "click")
        page = await client.post(_page(started), data={"outcome": "pay_lost"}, allow_redirects=False)
        assert page.status == 303, await page.text()
        (txn,) = await db_read("transactions")
        assert txn["status"] == "pending"
        assert await outcome_events(db_read) == []

        first = await _sync(client, started["payment_id"])
        assert first == {
            "payment_id": started["payment_id"],
            "provider": "click",
            "status": "succeeded",
            "published": True,
        }
        assert (await _sync(client, started["payment_id"]))["published"] is False

        (event,) = await outcome_events(db_read)
        assert event["event_type"] == "provider.payment.succeeded"
        assert event["data"]["observed_via"] == "status_check"
        async with engine.connect() as conn:
            reservation = (await conn.execute(select(ClickReservationRow))).mappings().one()
        assert reservation["state"] == "confirmed"
        assert event["data"]["provider_reference"] == str(reservation["click_paydoc_id"])

    async def test_a_declined_attempt_publishes_nothing(
        self, own_gateway: Gateway, internal_headers: Any, payment_request: Any, db_read: Any
    ) -> None:
        client = await own_gateway("click")
        started = await _start(client, internal_headers, payment_request, "click")
        assert (await client.post(_page(started), data={"outcome": "decline"}, allow_redirects=False)).status == 303
        synced = await _sync(client, started["payment_id"])
        # Click's cancel ends the attempt, not the payment: the payer may pay again.
        assert (synced["status"], synced["published"]) == ("failed", False)
        assert await outcome_events(db_read) == []
        (txn,) = await db_read("transactions")
        assert txn["status"] == "pending"

    async def test_nothing_paid_yet_is_pending(
        self, own_gateway: Gateway, internal_headers: Any, payment_request: Any, db_read: Any
    ) -> None:
        client = await own_gateway("click")
        started = await _start(client, internal_headers, payment_request, "click")
        assert (await _sync(client, started["payment_id"]))["status"] == "pending"
        assert await db_read("events") == []


class TestOctoSimulator:
    async def test_a_lost_notify_is_healed_once(
        self, own_gateway: Gateway, internal_headers: Any, payment_request: Any, db_read: Any
    ) -> None:
        client = await own_gateway("octo")
        started = await _start(client, internal_headers, payment_request, "octo")
        page = await client.get(_page(started))
        assert 'value="pay_lost"' in await page.text()
        paid = await client.post(_page(started), data={"outcome": "pay_lost"}, allow_redirects=False)
        assert paid.status == 303, await paid.text()
        (txn,) = await db_read("transactions")
        assert txn["status"] == "pending"

        first = await _sync(client, started["payment_id"])
        assert (first["provider"], first["status"], first["published"]) == ("octo", "succeeded", True)
        assert (await _sync(client, started["payment_id"]))["published"] is False
        (event,) = await outcome_events(db_read)
        assert event["data"]["observed_via"] == "status_check"
        assert (event["data"]["amount"], event["data"]["currency"]) == (150010, "UZS")
        assert event["data"]["provider_reference"] == started["provider_reference"]

    async def test_a_declined_payment_is_recorded_as_failed(
        self, own_gateway: Gateway, internal_headers: Any, payment_request: Any, db_read: Any
    ) -> None:
        client = await own_gateway("octo")
        started = await _start(client, internal_headers, payment_request, "octo")
        # The decline's notify reaches us (the app is its own gateway): the sync finds it final.
        assert (await client.post(_page(started), data={"outcome": "decline"}, allow_redirects=False)).status == 303
        synced = await _sync(client, started["payment_id"])
        assert (synced["status"], synced["published"]) == ("failed", False)
        (event,) = await outcome_events(db_read)
        assert event["data"]["observed_via"] == "callback"


class TestProviderDown:
    async def test_an_unreachable_provider_is_a_503_and_records_nothing(
        self, own_gateway: Gateway, make_client: Any, internal_headers: Any, payment_request: Any, db_read: Any
    ) -> None:
        client = await own_gateway("octo")
        started = await _start(client, internal_headers, payment_request, "octo")
        assert (await client.post(_page(started), data={"outcome": "pay_lost"}, allow_redirects=False)).status == 303
        # Another api process whose way to Octo (the simulator, at the gateway) is down.
        cut_off = await make_client(enabled_providers=["sandbox", "octo"], public_gateway_url="http://127.0.0.1:9")
        response = await cut_off.post(
            f"/internal/payments/{started['payment_id']}/sync", headers=reconciliation_headers()
        )
        assert response.status == 503
        assert response.headers["Retry-After"] == "5"
        assert (await response.json())["code"] == "provider_unavailable"
        assert await db_read("events") == []
        assert await outcome_events(db_read) == []
        # Once Octo answers again, the sync heals it.
        assert (await _sync(client, started["payment_id"]))["published"] is True


class TestStatusStatements:
    @pytest.mark.parametrize("provider", ["octo", "click"])
    async def test_the_providers_status_of_each_transaction_by_our_id(
        self, own_gateway: Gateway, internal_headers: Any, payment_request: Any, provider: str
    ) -> None:
        client = await own_gateway(provider)
        paid = await _start(client, internal_headers, payment_request, provider)
        assert (await client.post(_page(paid), data={"outcome": "pay_lost"}, allow_redirects=False)).status == 303
        declined = await _start(client, internal_headers, payment_request, provider)
        assert (await client.post(_page(declined), data={"outcome": "decline"}, allow_redirects=False)).status == 303
        untouched = await _start(client, internal_headers, payment_request, provider)
        now = datetime.now(UTC)
        start, end = (now - timedelta(hours=1)).isoformat(), (now + timedelta(hours=1)).isoformat()
        query = f"account_id=pac_simulator_{provider}&from={start}&to={end}"
        response = await client.get(
            f"/internal/statements?{query.replace('+00:00', 'Z')}", headers=reconciliation_headers()
        )
        assert response.status == 200, await response.text()
        lines = [json.loads(line) for line in (await response.text()).splitlines()]
        assert lines[-1] == {"complete": True}
        records = {line["payment_id"]: StatementRecord.model_validate(line) for line in lines[:-1]}
        assert records[paid["payment_id"]].status == "succeeded"
        assert records[paid["payment_id"]].amount == 150010
        assert records[declined["payment_id"]].status in ("failed", "cancelled")
        if provider == "octo":
            # Octo created the payment at start: it has a record of it (waiting for the payer).
            assert records[untouched["payment_id"]].status == "pending"
        else:
            # Click never heard of it: no line.
            assert untouched["payment_id"] not in records
