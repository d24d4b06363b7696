"""The embedded path: the same loop on a SQLite file migrated by Alembic (no SKIP LOCKED, no NOTIFY)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from billing_contracts.events import ProviderPaymentSucceededV1, parse_event
from billing_runtime.bus import MemoryBus, Message
from billing_runtime.migrations import upgrade_async
from providers_svc.app import create_app
from providers_svc.keys import callback_sender_key
from providers_svc.settings import Settings

SERVICE_ROOT = Path(__file__).resolve().parents[2]


async def test_payer_choice_reaches_the_bus_on_sqlite(
    aiohttp_client: Any,
    unused_tcp_port: int,
    settings: Settings,
    internal_headers: Any,
    payment_request: Any,
    eventually: Any,
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'providers.db'}"
    await upgrade_async(SERVICE_ROOT, url)
    bus = MemoryBus()
    received: list[Message] = []

    async def handler(message: Message) -> None:
        received.append(message)

    await bus.subscribe("test.provider-events", ["providers.provider.payment.#"], handler)
    await bus.start()
    try:
        # The bank calls the app itself back (no gateway in between), on a port chosen up front.
        port = unused_tcp_port
        app_settings = settings.model_copy(
            update={"database_url": url, "public_gateway_url": f"http://127.0.0.1:{port}"}
        )
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
