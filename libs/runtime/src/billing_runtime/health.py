"""``/healthz`` (alive), ``/readyz`` (dependencies reachable) and ``/metrics`` on every process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from billing_runtime.metrics import Metrics
from billing_runtime.shutdown import shutdown_key

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[None]]


def add_health_routes(app: web.Application, metrics: Metrics, checks: Mapping[str, Check]) -> None:
    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        shutdown = request.app.get(shutdown_key)
        if shutdown is not None and shutdown.draining.is_set():
            # Stopping (SIGTERM): out of rotation first, so a balancer stops sending before the
            # listener closes (billing_runtime.shutdown).
            return web.json_response({"status": "draining"}, status=503, headers={"Retry-After": "5"})
        results: dict[str, str] = {}
        ok = True
        for name, check in checks.items():
            try:
                async with asyncio.timeout(2):
                    await check()
                results[name] = "ok"
            except Exception as exc:  # readiness reports any failure as "not ready", never a 500
                log.warning("readiness check %s failed: %s", name, exc)
                results[name] = "unavailable"
                ok = False
        return web.json_response(
            {"status": "ok" if ok else "unavailable", "checks": results},
            status=200 if ok else 503,
            headers=None if ok else {"Retry-After": "5"},
        )

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics.handler)
