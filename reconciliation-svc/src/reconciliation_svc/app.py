"""The composition root of reconciliation-svc: ``create_app`` wires settings, plumbing, the projection
consumer, the janitor and routes. Roles: ``api`` serves ``/admin/reconciliation/*`` to the gateway;
``worker`` consumes events and runs the janitor. One process may hold both."""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web
from billing_runtime.app import service_app
from billing_runtime.bus import Bus
from billing_runtime.metrics import Metrics
from billing_runtime.plumbing import Plumbing
from sqlalchemy.ext.asyncio import AsyncEngine

from reconciliation_svc.api.routes import setup_routes
from reconciliation_svc.keys import metrics_key, plumbing_key, settings_key
from reconciliation_svc.metrics import ReconciliationMetrics
from reconciliation_svc.run_wiring import setup_runs
from reconciliation_svc.settings import Settings

INTERNAL_AUDIENCE = "reconciliation"
# The one issuer it accepts: the gateway, forwarding the platform admin's calls.
INTERNAL_ISSUERS = frozenset({"gateway"})


def create_app(
    settings: Settings,
    *,
    engine: AsyncEngine | None = None,
    bus: Bus | None = None,
    roles: Iterable[str] = ("api", "worker"),
) -> web.Application:
    roles = set(roles)
    metrics = Metrics("reconciliation")
    recon_metrics = ReconciliationMetrics(metrics)
    plumbing = Plumbing(
        service="reconciliation",
        database_url=settings.database_url,
        pool_size=settings.database_pool_size,
        bus_url=settings.bus_url,
        metrics=metrics,
        # It publishes nothing: no relay.
        outbox=None,
        engine=engine,
        bus=bus,
    )
    checks = {"database": plumbing.check_database}
    if "worker" in roles:
        checks["bus"] = plumbing.check_bus
    app = service_app(
        metrics,
        checks=checks,
        internal_secret=settings.internal_secret.get_secret_value(),
        internal_audience=INTERNAL_AUDIENCE,
        internal_issuers=INTERNAL_ISSUERS,
    )
    app[settings_key] = settings
    app[plumbing_key] = plumbing
    app[metrics_key] = recon_metrics
    app.cleanup_ctx.append(plumbing.ctx)
    if "api" in roles:
        setup_routes(app)
    setup_runs(app, settings, plumbing, metrics, roles)
    return app
