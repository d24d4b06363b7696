"""``billing_webhook_processing_duration_seconds``: how long handling one provider callback takes (verify,
record, answer), per provider, for every route under ``/billing/`` whatever its answer. A middleware
rather than a timer in each handler, so a provider added later is timed too."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware
from billing_runtime.middlewares import route_template

from providers_svc.metrics import ProvidersMetrics

CALLBACK_PREFIX = "/billing/"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def callback_provider(route: str) -> str | None:
    """The provider a callback route belongs to (``/billing/click/prepare`` → ``click``), None for
    any other route."""
    if not route.startswith(CALLBACK_PREFIX):
        return None
    return route[len(CALLBACK_PREFIX) :].split("/", 1)[0] or None


def callback_timing_middleware(metrics: ProvidersMetrics) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        provider = callback_provider(route_template(request))
        if provider is None:
            return await handler(request)
        started = time.perf_counter()
        try:
            return await handler(request)
        finally:
            metrics.callback_duration.labels(provider).observe(time.perf_counter() - started)

    return middleware
