"""A loopback HTTP proxy in front of the gateway that sees every request (to count token exchanges and
read the Idempotency-Keys sent) and can break an exchange the platform would not break on demand:
drop an answer after the gateway made it, or send a forged token so the gateway answers 401."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from billing_runtime.testing import free_port

# Hop-by-hop headers are the proxy's own business (RFC 9110 §7.6.1), and aiohttp sets the length.
_NOT_FORWARDED = {"host", "connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    status: int | None  # None: the answer was dropped


@dataclass
class Proxy:
    upstream: str
    url: str = ""
    seen: list[Seen] = field(default_factory=list)
    # (method, path): drop the gateway's answer to the next request of each, then forward as usual.
    drop_next: set[tuple[str, str]] = field(default_factory=set)
    # Replace the bearer token of the next request to this path with a forged one (the gateway: 401).
    forge_token_next: set[str] = field(default_factory=set)

    def count(self, method: str, path: str) -> int:
        return sum(1 for s in self.seen if (s.method, s.path) == (method, path))

    def of(self, method: str, path: str) -> list[Seen]:
        return [s for s in self.seen if (s.method, s.path) == (method, path)]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED}
        if request.path in self.forge_token_next and "Authorization" in headers:
            self.forge_token_next.discard(request.path)
            headers["Authorization"] = "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.forged"
        body = await request.read()
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method, self.upstream + request.path_qs, headers=headers, data=body or None
            ) as upstream,
        ):
            payload = await upstream.read()
            key = (request.method, request.path)
            if key in self.drop_next:
                self.drop_next.discard(key)
                self.seen.append(Seen(request.method, request.path, dict(request.headers), None))
                # The gateway did the work; the client never hears of it (a reset after the request).
                assert request.transport is not None
                request.transport.abort()
                return web.Response()
            self.seen.append(Seen(request.method, request.path, dict(request.headers), upstream.status))
            answer = {k: v for k, v in upstream.headers.items() if k.lower() not in _NOT_FORWARDED}
            return web.Response(status=upstream.status, body=payload, headers=answer)


@asynccontextmanager
async def proxying(upstream: str) -> AsyncIterator[Proxy]:
    proxy = Proxy(upstream.rstrip("/"))
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    proxy.url = f"http://127.0.0.1:{port}"
    try:
        yield proxy
    finally:
        await runner.cleanup()
