"""The Payme simulator's payer page drives our real ``POST /billing/payme`` over HTTP: the app is served on a
port its own ``public_gateway_url`` points at, so the simulator's calls go through the network stack as
Payme's would. Each outcome's end state is checked in the database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import unused_port
from billing_runtime.bus import MemoryBus
from providers_svc.app import create_app
from providers_svc.settings import Settings
from sqlalchemy.ext.asyncio import AsyncEngine

pytestmark = pytest.mark.postgres

TENANT = "ten_aaaaaaaaaaaaaaaa"
RETURN_URL = "http://127.0.0.1:8080/c/tok_1/return"


@pytest.fixture
async def served(aiohttp_client: Any, engine: AsyncEngine, bus: MemoryBus, settings: Settings) -> Any:
    """``await served(gateway=None)``: the app on a fixed loopback port; its simulator calls ``gateway``
    (by default the app itself)."""

    async def make(gateway: str | None = None) -> Any:
        port = unused_port()
        own = f"http://127.0.0.1:{port}"
        app_settings = settings.model_copy(
            update={"enabled_providers": ["sandbox", "payme"], "public_gateway_url": gateway or own}
        )
        app = create_app(app_settings, engine=engine, bus=bus, roles=("api",))
        return await aiohttp_client(app, server_kwargs={"port": port})

    return make


async def start(client: Any, internal_headers: Any, *, livemode: bool = False, tenant: str = TENANT) -> dict[str, Any]:
    body = {
        "payment_id": f"pay_sim{datetime.now(UTC).timestamp():.6f}".replace(".", ""),
        "provider": "payme",
        "amount": 1_250_000,
        "currency": "UZS",
        "order_id": "order-77",
        "description": "A <b>kilo</b> of plov",
        "return_url": RETURN_URL,
        "expires_at": (datetime.now(UTC) + timedelta(minutes=30)).isoformat(),
    }
    response = await client.post(
        "/internal/payments/start", json=body, headers=internal_headers(tenant, livemode=livemode)
    )
    assert response.status == 200, await response.text()
    data: dict[str, Any] = await response.json()
    data["payment_id"] = body["payment_id"]
    return data


def page_path(started: dict[str, Any]) -> str:
    path = "/simulators/payme/pay/" + started["provider_transaction_id"]
    assert started["redirect_url"].endswith(path)
    return path


async def choose(client: Any, started: dict[str, Any], outcome: str) -> Any:
    return await client.post(page_path(started), data={"outcome": outcome}, allow_redirects=False)


class TestSimulatorPage:
    async def test_the_page_shows_the_payment_and_every_outcome(self, served: Any, internal_headers: Any) -> None:
        client = await served()
        started = await start(client, internal_headers)
        assert started["redirect_url"].startswith(f"http://127.0.0.1:{client.port}/simulators/payme/pay/ptx_")
        response = await client.get(page_path(started))
        assert response.status == 200
        html = await response.text()
        assert "12,500.00 UZS" in html
        assert "A &lt;b&gt;kilo&lt;/b&gt; of plov" in html
        for outcome in ("pay", "decline", "refund", "timeout"):
            assert f'value="{outcome}"' in html
        assert response.headers["Cache-Control"] == "no-store"

    async def test_pay(self, served: Any, internal_headers: Any, tables: Any, db_read: Any) -> None:
        client = await served()
        started = await start(client, internal_headers)
        response = await choose(client, started, "pay")
        assert response.status == 303, await response.text()
        assert response.headers["Location"] == RETURN_URL
        rows = await tables.payme()
        assert [(r["state"], r["amount"], r["account_id"]) for r in rows] == [(2, 1_250_000, "pac_simulator_payme")]
        assert len(rows[0]["payme_id"]) == 24
        int(rows[0]["payme_id"], 16)
        transaction = next(t for t in await db_read("transactions") if t["id"] == started["provider_transaction_id"])
        assert (transaction["status"], transaction["provider_reference"]) == ("succeeded", rows[0]["payme_id"])
        outbox = [json.loads(r["body"])["event_type"] for r in await db_read("outbox")]
        assert outbox == ["provider.payment.succeeded"]
        # Paid: the page says so, and a second choice plays nothing.
        again = await choose(client, started, "pay")
        assert again.status == 200
        assert "already been completed" in await again.text()
        assert len(await tables.payme()) == 1

    async def test_decline(self, served: Any, internal_headers: Any, tables: Any, db_read: Any) -> None:
        client = await served()
        started = await start(client, internal_headers)
        assert (await choose(client, started, "decline")).status == 303
        assert [(r["state"], r["reason"]) for r in await tables.payme()] == [(-1, 2)]
        transaction = next(t for t in await db_read("transactions") if t["id"] == started["provider_transaction_id"])
        assert transaction["status"] == "pending"
        # The payment stays payable: the payer may try again, and pay.
        assert (await choose(client, started, "pay")).status == 303
        assert sorted(r["state"] for r in await tables.payme()) == [-1, 2]

    async def test_refund(self, served: Any, internal_headers: Any, tables: Any) -> None:
        client = await served()
        started = await start(client, internal_headers)
        assert (await choose(client, started, "refund")).status == 303
        assert [(r["state"], r["reason"]) for r in await tables.payme()] == [(-2, 5)]
        assert [r["payment_id"] for r in await tables.reversals()] == [started["payment_id"]]

    async def test_timeout(self, served: Any, internal_headers: Any, tables: Any, db_read: Any) -> None:
        client = await served()
        started = await start(client, internal_headers)
        assert (await choose(client, started, "timeout")).status == 303
        # The stale Create stored nothing; the one that expired meanwhile was cancelled with reason 4.
        assert [(r["state"], r["reason"]) for r in await tables.payme()] == [(-1, 4)]
        assert await db_read("outbox") == []

    async def test_an_unknown_choice_is_400(self, served: Any, internal_headers: Any, tables: Any) -> None:
        client = await served()
        started = await start(client, internal_headers)
        assert (await choose(client, started, "steal")).status == 400
        assert await tables.payme() == []


class TestSimulatorRefuses:
    async def test_a_transaction_of_a_real_account(
        self, served: Any, internal_headers: Any, new_shop: Any, tables: Any
    ) -> None:
        client = await served()
        shop = await new_shop(client=client)
        started = await shop.start()
        path = "/simulators/payme/pay/" + started["provider_transaction_id"]
        assert (await client.get(path)).status == 403
        assert (await client.post(path, data={"outcome": "pay"})).status == 403
        assert await tables.payme() == []

    async def test_a_live_transaction(
        self, served: Any, internal_headers: Any, engine: AsyncEngine, tables: Any
    ) -> None:
        client = await served()
        started = await start(client, internal_headers)
        async with engine.begin() as conn:
            await conn.exec_driver_sql(
                "UPDATE provider_transactions SET livemode = true WHERE id = $1", (started["provider_transaction_id"],)
            )
        assert (await choose(client, started, "pay")).status == 403
        assert await tables.payme() == []

    async def test_an_unknown_transaction(self, served: Any) -> None:
        client = await served()
        assert (await client.get("/simulators/payme/pay/ptx_nothing")).status == 404


class TestConformance:
    async def test_an_answer_payme_would_not_accept_shows_an_error_page(
        self, served: Any, internal_headers: Any, aiohttp_server: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        async def wrong(request: web.Request) -> web.Response:
            return web.json_response({"jsonrpc": "2.0", "id": 1, "result": {"allow": False}})

        fake = web.Application()
        fake.router.add_post("/billing/payme", wrong)
        server = await aiohttp_server(fake, host="127.0.0.1")
        client = await served(gateway=f"http://127.0.0.1:{server.port}")
        started = await start(client, internal_headers)
        response = await choose(client, started, "pay")
        assert response.status == 502
        html = await response.text()
        assert "CheckPerformTransaction" in html
        assert "result.allow == true" in html
        assert "payme simulator" in caplog.text
