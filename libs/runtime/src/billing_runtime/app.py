"""The skeleton of every service's ``web.Application``: middlewares in the right order, health routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping

from aiohttp import web
from aiohttp.typedefs import Middleware

from billing_runtime.health import Check, add_health_routes
from billing_runtime.internal_auth import internal_auth_middleware
from billing_runtime.loop_watch import loop_watch
from billing_runtime.metrics import Metrics
from billing_runtime.middlewares import metrics_middleware, request_id_middleware, trace_middleware
from billing_runtime.problems import problem_middleware

DEFAULT_BODY_LIMIT = 64 * 1024
HEALTH_PREFIXES = ("/healthz", "/readyz", "/metrics")
# What a process tells about its insides; /healthz (alive or not) says nothing.
OPS_PATHS = frozenset({"/readyz", "/metrics"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _guard_ops(guard: Callable[[web.Request], None]) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPS_PATHS:
            guard(request)
        return await handler(request)

    return middleware


def service_app(
    metrics: Metrics,
    *,
    checks: Mapping[str, Check],
    internal_secret: str | None,
    internal_audience: str,
    internal_issuers: Collection[str] = (),
    confined_issuers: Mapping[str, Collection[str]] | None = None,
    issuer_secrets: Mapping[str, str] | None = None,
    public_prefixes: tuple[str, ...] = (),
    body_limit: int = DEFAULT_BODY_LIMIT,
    ops_guard: Callable[[web.Request], None] | None = None,
) -> web.Application:
    """request id → trace context → metrics → problem+json → ops guard (when given) → internal auth (when
    a secret is given: tokens signed with it by one of ``internal_issuers``, or with an issuer's own key
    from ``issuer_secrets``; those in ``confined_issuers`` reach only the routes listed for them, naming
    no tenant) → handler.

    ``ops_guard`` raises (a 401 problem) unless a request may read ``/readyz`` and ``/metrics``: on a
    public listener those are not for everyone (the gateway's, API.md "Operations")."""
    middlewares: list[Middleware] = [
        request_id_middleware,
        trace_middleware,
        metrics_middleware(metrics),
        problem_middleware,
    ]
    if ops_guard is not None:
        middlewares.append(_guard_ops(ops_guard))
    if internal_secret is not None:
        middlewares.append(
            internal_auth_middleware(
                internal_secret,
                internal_audience,
                public_prefixes=HEALTH_PREFIXES + public_prefixes,
                issuers=internal_issuers,
                confined=confined_issuers,
                issuer_secrets=issuer_secrets,
            )
        )
    app = web.Application(middlewares=middlewares, client_max_size=body_limit)
    add_health_routes(app, metrics, checks)
    app.cleanup_ctx.append(loop_watch(metrics))
    return app
