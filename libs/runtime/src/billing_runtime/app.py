"""The skeleton of every service's ``web.Application``: middlewares in the right order, health routes."""

from __future__ import annotations

from aiohttp import web

from billing_runtime.health import Check, add_health_routes
from billing_runtime.internal_auth import internal_auth_middleware
from billing_runtime.metrics import Metrics
from billing_runtime.middlewares import metrics_middleware, request_id_middleware
from billing_runtime.problems import problem_middleware

DEFAULT_BODY_LIMIT = 64 * 1024
HEALTH_PREFIXES = ("/healthz", "/readyz", "/metrics")


def service_app(
    metrics: Metrics,
    *,
    checks: dict[str, Check],
    internal_secret: str | None,
    internal_audience: str,
    public_prefixes: tuple[str, ...] = (),
    body_limit: int = DEFAULT_BODY_LIMIT,
) -> web.Application:
    """request id → metrics → problem+json → internal auth (when a secret is given) → handler."""
    middlewares = [request_id_middleware, metrics_middleware(metrics), problem_middleware]
    if internal_secret is not None:
        middlewares.append(
            internal_auth_middleware(
                internal_secret, internal_audience, public_prefixes=HEALTH_PREFIXES + public_prefixes
            )
        )
    app = web.Application(middlewares=middlewares, client_max_size=body_limit)
    add_health_routes(app, metrics, checks)
    return app
