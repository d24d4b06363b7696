"""A process for ``test_shutdown_serve``: ``serve`` with a slow route, run as
``python serve_fixture.py <port> <grace> <delay> <hang>``; ``hang=1`` makes its cleanup never end."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

from aiohttp import web
from billing_runtime.app import service_app
from billing_runtime.metrics import Metrics
from billing_runtime.running import configure_logging, run, serve


def main() -> None:
    port, grace, delay, hang = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "1"
    configure_logging("INFO")
    app = service_app(Metrics("serve_fixture"), checks={}, internal_secret=None, internal_audience="x")

    async def slow(_request: web.Request) -> web.Response:
        await asyncio.sleep(1.5)
        return web.Response(text="done")

    async def cleanup(_app: web.Application) -> AsyncIterator[None]:
        yield
        if hang:
            await asyncio.sleep(3600)

    app.router.add_get("/slow", slow)
    app.cleanup_ctx.append(cleanup)

    async def ready() -> None:
        print("ready", flush=True)

    run(serve([(app, "127.0.0.1", port)], ready=ready, grace=grace, delay=delay))


if __name__ == "__main__":
    main()
