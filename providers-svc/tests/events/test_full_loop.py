"""End to end inside providers-svc: payer page → sandbox bank callback (through a stand-in gateway) →
verified callback → outbox → relay → bus subscriber."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from billing_contracts.events import ProviderPaymentFailedV1, ProviderPaymentSucceededV1, parse_event
from billing_runtime.bus import MemoryBus, Message

TENANT_A = "ten_aaaaaaaaaaaaaaaa"
RETURN_URL = "http://127.0.0.1:8080/c/tok_1/return"
FORWARDED = ("Content-Type", "Sandbox-Signature")


@dataclass
class Gateway:
    """Forwards every request to providers-svc unchanged, as the real gateway does for /billing and /sandbox."""

    target: str = ""
    url: str = ""
    forwarded: list[str] = field(default_factory=list)

    async def forward(self, request: web.Request) -> web.Response:
        self.forwarded.append(request.path)
        headers = {k: v for k, v in request.headers.items() if k in FORWARDED}
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method,
                self.target + request.path_qs,
                data=await request.read(),
                headers=headers,
                allow_redirects=False,
            ) as upstream,
        ):
            passed = {k: v for k, v in upstream.headers.items() if k in ("Content-Type", "Location")}
            return web.Response(status=upstream.status, body=await upstream.read(), headers=passed)


@pytest.fixture
async def gateway(aiohttp_server: Any) -> Gateway:
    gw = Gateway()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", gw.forward)
    server = await aiohttp_server(app, host="127.0.0.1")
    gw.url = str(server.make_url("")).rstrip("/")
    return gw


@pytest.fixture
async def received(bus: MemoryBus) -> list[Message]:
    messages: list[Message] = []

    async def handler(message: Message) -> None:
        messages.append(message)

    await bus.subscribe("test.provider-events", ["providers.provider.payment.#"], handler)
    return messages


@pytest.fixture
async def service(make_client: Any, gateway: Gateway) -> Any:
    client = await make_client(roles=("api", "worker"), public_gateway_url=gateway.url, sandbox_pending_delay=0.3)
    gateway.target = str(client.make_url("")).rstrip("/")
    return client


class TestFullLoop:
    @pytest.mark.parametrize(
        ("outcome", "event_cls", "status"),
        [
            ("succeed", ProviderPaymentSucceededV1, "succeeded"),
            ("decline", ProviderPaymentFailedV1, "failed"),
            ("pending", ProviderPaymentSucceededV1, "succeeded"),
        ],
    )
    async def test_payer_choice_reaches_the_bus_once(
        self,
        service: Any,
        gateway: Gateway,
        received: list[Message],
        start_payment: Callable[..., Awaitable[dict[str, Any]]],
        db_read: Any,
        eventually: Any,
        outcome: str,
        event_cls: type,
        status: str,
    ) -> None:
        payment = await start_payment(service)
        ptx = payment["provider_transaction_id"]
        assert payment["redirect_url"] == f"{gateway.url}/sandbox/pay/{ptx}"

        async with aiohttp.ClientSession() as browser:
            async with browser.get(payment["redirect_url"]) as page:
                assert page.status == 200
                assert "50.00 USD" in await page.text()
            async with browser.post(
                payment["redirect_url"], data={"outcome": outcome}, allow_redirects=False
            ) as submitted:
                assert submitted.status == 303
                assert submitted.headers["Location"] == RETURN_URL

        async def published() -> bool:
            # The relay may publish before the bank's sender has the gateway's answer and records it.
            [charge] = await db_read("charges")
            return len(received) >= 1 and charge["delivered_at"] is not None

        await eventually(published)
        await asyncio.sleep(0.3)  # room for a duplicate to show up, if there were one
        [message] = received
        event = parse_event(message.body)
        assert isinstance(event, event_cls)
        assert message.message_id == event.event_id
        assert message.routing_key == f"providers.{event.event_type}.v1"
        assert event.tenant_id == TENANT_A
        assert (event.data.payment_id, event.data.provider_transaction_id) == (payment["payment_id"], ptx)
        assert (event.data.amount, event.data.currency) == (5000, "USD")

        [txn] = await db_read("transactions")
        assert txn["status"] == status
        [charge] = await db_read("charges")
        assert charge["delivered_at"] is not None
        assert [row["result"] for row in await db_read("events")] == ["applied"]
        assert "/billing/sandbox" in gateway.forwarded

        async def relayed() -> bool:
            return await db_read("outbox") == []

        await eventually(relayed)


class TestRelay:
    async def test_relay_publishes_the_outbox_to_the_bus(
        self,
        make_client: Any,
        received: list[Message],
        start_payment: Callable[..., Awaitable[dict[str, Any]]],
        sandbox_callback: Any,
        db_read: Any,
        eventually: Any,
    ) -> None:
        client = await make_client(roles=("api", "worker"))
        payments = [await start_payment(client) for _ in range(3)]
        for payment in payments:
            callback = sandbox_callback(payment["provider_transaction_id"])
            for _ in range(2):  # the duplicate must not produce a second event
                response = await client.post("/billing/sandbox", data=callback.body, headers=callback.headers)
                assert response.status == 200

        async def drained() -> bool:
            return len(received) >= 3 and await db_read("outbox") == []

        await eventually(drained)
        await asyncio.sleep(0.2)
        assert sorted(parse_event(m.body).data.payment_id for m in received) == sorted(  # type: ignore[union-attr]
            p["payment_id"] for p in payments
        )
        metrics = ""

        async def counted() -> bool:
            # The relay counts what it published once its delete of the rows is back, after they are gone.
            nonlocal metrics
            metrics = await (await client.get("/metrics")).text()
            return "outbox_published_total 3.0" in metrics

        await eventually(counted)
        assert "outbox_published_total 3.0" in metrics
