"""A database outage answers 503 with Retry-After (never a 500), in each route's own format."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from billing_runtime.bus import MemoryBus
from providers_svc.adapters.sandbox import SIGNATURE_HEADER, sign
from providers_svc.app import create_app
from providers_svc.settings import Settings

SANDBOX_SECRET = "test-sandbox-secret-0123456789abcdef"  # the conftest settings' key


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
async def down_client(aiohttp_client: Any, settings: Settings) -> Any:
    unreachable = settings.model_copy(
        update={"database_url": f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/providers"}
    )
    # The api role opens no connection at start-up, so the app starts while its database is down.
    return await aiohttp_client(create_app(unreachable, bus=MemoryBus(), roles=("api",)))


class TestDatabaseDown:
    async def test_internal_api_is_503_problem(
        self, down_client: Any, internal_headers: Any, payment_request: Any
    ) -> None:
        response = await down_client.post(
            "/internal/payments/start", json=payment_request(), headers=internal_headers()
        )
        assert response.status == 503
        assert response.headers["Retry-After"] == "5"
        assert response.content_type == "application/problem+json"
        assert (await response.json())["code"] == "database_unavailable"

    async def test_callback_is_503_in_sandbox_format(self, down_client: Any, sandbox_callback: Any) -> None:
        callback = sandbox_callback("ptx_whatever")
        response = await down_client.post("/billing/sandbox", data=callback.body, headers=callback.headers)
        assert response.status == 503
        assert response.headers["Retry-After"] == "5"
        assert await response.json() == {"error": "temporarily_unavailable"}

    async def test_payer_page_is_503(self, down_client: Any) -> None:
        assert (await down_client.get("/sandbox/pay/ptx_whatever")).status == 503

    async def test_readiness_reports_it(self, down_client: Any) -> None:
        response = await down_client.get("/readyz")
        assert response.status == 503
        assert (await response.json())["checks"]["database"] == "unavailable"


async def test_callback_body_that_is_not_utf8_is_400(make_client: Any, db_read: Any) -> None:
    client = await make_client()
    body = b'{"id":"\xff\xfe","type":"payment.succeeded","transaction":"ptx_x","amount":1,"currency":"USD","created":1}'
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(SANDBOX_SECRET, body)}
    response = await client.post("/billing/sandbox", data=body, headers=headers)
    assert response.status == 400
    assert await response.json() == {"error": "invalid_payload"}
    assert await db_read("events") == []
