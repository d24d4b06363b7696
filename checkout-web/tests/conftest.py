"""Fixtures: a fake gateway (a real aiohttp server on loopback holding checkouts in memory) and the
app pointed at it."""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from billing_runtime.testing import create_test_database, drop_test_database
from checkout_web.app import create_app
from checkout_web.settings import Settings

CHECKOUT_ROOT = Path(__file__).resolve().parents[1]
# A Fernet key for the tests only (never a default anywhere).
SESSION_KEYS = "J2mzn9FpW6-Yk6wS1kV8aH3vQ3lC9pO5vC5l0wU6mXQ="

PAYABLE = ("CREATED", "PROVIDER_PENDING")


def _problem(status: int, code: str, detail: str) -> web.Response:
    return web.json_response(
        {"type": "about:blank", "title": code, "status": status, "code": code, "detail": detail},
        status=status,
        content_type="application/problem+json",
    )


@dataclass
class FakeGateway:
    """The gateway's checkout API over a real socket, with the state a test needs to set up and inspect."""

    checkouts: dict[str, dict[str, Any]] = field(default_factory=dict)
    # token → (status, code): the next pay calls for that token answer with this problem.
    pay_problems: dict[str, tuple[int, str]] = field(default_factory=dict)
    pay_calls: list[tuple[str, Any]] = field(default_factory=list)
    get_calls: list[str] = field(default_factory=list)
    request_ids: list[str | None] = field(default_factory=list)
    delay: float = 0.0
    # When set, every successful pay answers with this redirect_url instead of a sandbox one.
    redirect_url: str | None = None
    url: str = ""

    def add(self, token: str | None = None, **overrides: Any) -> str:
        token = token or secrets.token_urlsafe(24)
        self.checkouts[token] = {
            "status": "CREATED",
            "amount": 5000,
            "currency": "USD",
            "currency_exponent": 2,
            "description": "Two tickets",
            "order_id": "order-1001",
            "merchant": {"display_name": "Shop One"},
            "providers": [
                {"name": "sandbox", "display_name": "Sandbox (test)"},
                {"name": "click", "display_name": "Click"},
            ],
            "return_url": "https://shop.example/thanks",
            "expires_at": "2026-11-22T10:00:00Z",
            "failure_message": None,
            "livemode": False,
            **overrides,
        }
        return token

    def set_status(self, token: str, status: str, failure_message: str | None = None) -> None:
        self.checkouts[token]["status"] = status
        self.checkouts[token]["failure_message"] = failure_message

    @property
    def calls(self) -> int:
        return len(self.get_calls) + len(self.pay_calls)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/checkout/{token}", self._get)
        app.router.add_post("/v1/checkout/{token}/pay", self._pay)
        return app

    async def _get(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        self.get_calls.append(token)
        self.request_ids.append(request.headers.get("X-Request-Id"))
        await asyncio.sleep(self.delay)
        checkout = self.checkouts.get(token)
        if checkout is None:
            return _problem(404, "not_found", "No such checkout")
        return web.json_response(checkout)

    async def _pay(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        body = await request.json()
        self.pay_calls.append((token, body))
        await asyncio.sleep(self.delay)
        checkout = self.checkouts.get(token)
        if checkout is None:
            return _problem(404, "not_found", "No such checkout")
        if token in self.pay_problems:
            status, code = self.pay_problems[token]
            return _problem(status, code, "forced by the test")
        if checkout["status"] not in PAYABLE:
            return _problem(409, "invalid_state", f"payment is {checkout['status']}")
        if body.get("provider") not in {p["name"] for p in checkout["providers"]}:
            return _problem(422, "validation_error", "provider not allowed")
        checkout["status"] = "PROVIDER_PENDING"
        redirect_url = self.redirect_url or f"https://sandbox.example/pay/{token}?p={body['provider']}"
        return web.json_response({"redirect_url": redirect_url})


@pytest.fixture
async def fake_gateway(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> FakeGateway:
    gateway = FakeGateway()
    server = await aiohttp_server(gateway.app(), host="127.0.0.1")
    gateway.url = str(server.make_url(""))
    return gateway


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    url = await create_test_database("checkout", CHECKOUT_ROOT)
    yield url
    await drop_test_database(url)


@pytest.fixture
def settings(fake_gateway: FakeGateway, database_url: str) -> Settings:
    return Settings(
        gateway_url=fake_gateway.url,
        request_timeout=2.0,
        connect_timeout=1.0,
        database_url=database_url,
        session_keys=SESSION_KEYS,
    )


@pytest.fixture
def make_client(aiohttp_client: Callable[..., Awaitable[TestClient]]) -> Callable[[Settings], Awaitable[TestClient]]:
    async def make(settings: Settings) -> TestClient:
        return await aiohttp_client(create_app(settings))

    return make


@pytest.fixture
async def client(make_client: Callable[[Settings], Awaitable[TestClient]], settings: Settings) -> TestClient:
    return await make_client(settings)


@pytest.fixture
def token(fake_gateway: FakeGateway) -> str:
    return fake_gateway.add()
