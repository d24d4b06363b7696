"""A fake gateway on loopback that answers from a script: 429 with Retry-After, 5xx sequences, resets
and hangs, which the real platform cannot be made to produce on demand. It grants tokens at
``/v1/auth/token`` and answers every other request with the next step of the script."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from billing_runtime.testing import free_port

PAYMENT = {"id": "pay_1", "object": "payment", "status": "CREATED", "amount": 5000, "currency": "USD"}


def fake_jwt(lifetime: int) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256'})}.{part({'exp': int(time.time()) + lifetime})}.sig"


@dataclass(frozen=True)
class Step:
    """One answer: ``status`` with ``headers`` and ``body``; or ``reset`` (the connection is dropped
    without an answer), or ``hang`` seconds before answering."""

    status: int = 200
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False
    hang: float = 0.0


def problem(status: int, code: str, **extra: Any) -> dict[str, Any]:
    return {"type": "about:blank", "title": code, "status": status, "code": code, "request_id": "req_fake", **extra}


@dataclass
class Script:
    steps: list[Step] = field(default_factory=list)
    # (monotonic time, method, path, headers) of every request but the token exchanges.
    requests: list[tuple[float, str, str, dict[str, str]]] = field(default_factory=list)
    token_requests: int = 0
    token_lifetime: int = 3600
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        if request.path == "/v1/auth/token":
            self.token_requests += 1
            return web.json_response(
                {
                    "access_token": fake_jwt(self.token_lifetime),
                    "token_type": "Bearer",
                    "expires_in": self.token_lifetime,
                }
            )
        self.requests.append((time.monotonic(), request.method, request.path, dict(request.headers)))
        step = self.steps.pop(0) if self.steps else Step(body=PAYMENT)
        if step.reset:
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        if step.hang:
            await asyncio.sleep(step.hang)
        content_type = "application/problem+json" if step.status >= 400 else "application/json"
        return web.Response(
            status=step.status,
            text=json.dumps(step.body if step.body is not None else PAYMENT),
            headers={"Content-Type": content_type, **step.headers},
        )


@asynccontextmanager
async def scripted(*steps: Step) -> AsyncIterator[Script]:
    script = Script(list(steps))
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", script.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    script.url = f"http://127.0.0.1:{port}"
    try:
        yield script
    finally:
        await runner.cleanup()
