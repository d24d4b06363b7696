"""Test doubles and helpers shared by the gateway tests."""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from billing_runtime.internal_auth import INTERNAL_HEADER, Caller, verify_internal
from gateway.settings import Settings
from multidict import CIMultiDict

ADMIN_TOKEN = "admin-token-for-tests-0123456789abcdef"
INTERNAL_SECRET = "internal-secret-for-tests-0123456789abcdef"
# Each upstream verifies with a key of its own (payments-svc's is INTERNAL_SECRET).
INTERNAL_KEYS = {
    "payments": INTERNAL_SECRET,
    "webhooks": "webhooks-internal-key-for-tests-0123456789",
    "providers": "providers-internal-key-for-tests-0123456789",
    "reconciliation": "reconciliation-internal-key-for-tests-0123456789",
}
# The first key signs; both verify.
JWT_KEYS = {"k2": "second-jwt-key-for-tests-0123456789abcdef", "k1": "first-jwt-key-for-tests-0123456789abcdef"}
JWT_ISSUER = "test-gateway"
JWT_AUDIENCE = "test-billing-api"


@dataclass
class Received:
    """One request as the fake upstream saw it."""

    method: str
    path_qs: str
    headers: CIMultiDict[str]
    body: bytes

    def caller(self, audience: str) -> Caller:
        return verify_internal(INTERNAL_KEYS[audience], self.headers[INTERNAL_HEADER], audience=audience)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b'{"ok": true}'
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    delay: float = 0.0


class FakeUpstream:
    """A stand-in for payments-svc or providers-svc: records every request, answers as told."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.replies: dict[tuple[str, str], Reply] = {}
        self.healthy = True
        self.url = ""
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self._handle)

    def reply(self, method: str, path: str, reply: Reply) -> None:
        self.replies[(method, path)] = reply

    async def _handle(self, request: web.Request) -> web.Response:
        if request.path == "/healthz":
            return web.json_response({"status": "ok"}, status=200 if self.healthy else 500)
        self.received.append(
            Received(request.method, request.raw_path, CIMultiDict(request.headers), await request.read())
        )
        reply = self.replies.get((request.method, request.path), Reply())
        if reply.delay:
            await asyncio.sleep(reply.delay)
        return web.Response(status=reply.status, body=reply.body, headers=reply.headers)

    @property
    def last(self) -> Received:
        assert self.received, "the upstream received nothing"
        return self.received[-1]


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Gateway:
    """A test client for one gateway app, plus shortcuts for the admin and token calls."""

    client: TestClient[web.Request, web.Application]
    settings: Settings

    @property
    def app(self) -> web.Application:
        return self.client.app  # type: ignore[return-value]

    async def create_tenant(self, app_name: str = "shop-1", display_name: str = "Shop One") -> dict[str, Any]:
        resp = await self.client.post(
            "/admin/tenants", json={"app_name": app_name, "display_name": display_name}, headers=admin_headers()
        )
        assert resp.status == 201, await resp.text()
        return dict(await resp.json())

    async def token(self, app_name: str, secret: str) -> str:
        resp = await self.client.post("/v1/auth/token", json={"app_name": app_name, "secret": secret})
        assert resp.status == 200, await resp.text()
        return str((await resp.json())["access_token"])

    async def tenant_with_token(self, app_name: str = "shop-1") -> tuple[dict[str, Any], str]:
        tenant = await self.create_tenant(app_name)
        return tenant, await self.token(app_name, tenant["secret"])


def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def problem(resp: Any, status: int, code: str | set[str]) -> dict[str, Any]:
    """Assert a problem+json answer with this status and code (or one of these codes); return its body."""
    text = await resp.text()
    assert resp.status == status, text
    assert resp.headers["Content-Type"].startswith("application/problem+json"), resp.headers
    body = json.loads(text)
    assert body["status"] == status
    assert body["code"] in ({code} if isinstance(code, str) else code), body
    assert body["request_id"] == resp.headers["X-Request-Id"]
    return dict(body)


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def raw_request(
    client: TestClient[web.Request, web.Application], method: str, target: str, headers: dict[str, str]
) -> RawResponse:
    """Send a request line exactly as given (HTTP clients normalize ``..`` and re-encode paths)."""
    assert client.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    try:
        lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", "Content-Length: 0"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        data = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = dict(line.split(": ", 1) for line in header_lines)
    return RawResponse(int(status_line.split()[1]), parsed, body)
