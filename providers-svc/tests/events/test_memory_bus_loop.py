"""The embedded path: the payer's choice reaches the in-process bus through the app's own engine, relay
and callback sender (the embedded mode's wiring), and the callback sender then owes nothing."""

from __future__ import annotations

from typing import Any

from billing_contracts.events import ProviderPaymentSucceededV1, parse_event
from billing_runtime.bus import MemoryBus, Message
from providers_svc.app import create_app
from providers_svc.keys import callback_sender_key
from providers_svc.settings import Settings


async def test_payer_choice_reaches_the_in_process_bus(
    aiohttp_client: Any,
    unused_tcp_port: int,
    settings: Settings,
    internal_headers: Any,
    payment_request: Any,
    eventually: Any,
    engine: Any,  # an emptied database
) -> None:
    bus = MemoryBus()
    received: list[Message] = []

    async def handler(message: Message) -> None:
        received.append(message)

    await bus.subscribe("test.provider-events", ["providers.provider.payment.#"], handler)
    await bus.start()
    try:
        # The bank calls the app itself back (no gateway in between), on a port chosen up front.
        port = unused_tcp_port
        app_settings = settings.model_copy(update={"public_gateway_url": f"http://127.0.0.1:{port}"})
        client = await aiohttp_client(create_app(app_settings, bus=bus), server_kwargs={"port": port})
        body = payment_request()
        started = await client.post("/internal/payments/start", json=body, headers=internal_headers())
        assert started.status == 200
        payment = await started.json()
        again = await client.post("/internal/payments/start", json=body, headers=internal_headers())
        assert await again.json() == payment
        submitted = await client.post(
            f"/sandbox/pay/{payment['provider_transaction_id']}", data={"outcome": "succeed"}, allow_redirects=False
        )
        assert submitted.status == 303

        async def published() -> bool:
            return len(received) >= 1

        await eventually(published)
        [message] = received
        event = parse_event(message.body)
        assert isinstance(event, ProviderPaymentSucceededV1)
        assert event.data.payment_id == body["payment_id"]
        assert await client.app[callback_sender_key].run_once() == 0
        cancel = await client.post(f"/internal/payments/{body['payment_id']}/cancel", headers=internal_headers())
        assert cancel.status == 409
    finally:
        await bus.close()
