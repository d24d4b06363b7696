"""The composition root of reconciliation-svc: ``create_app`` wires settings, plumbing, the projection
consumer, the janitor and routes. Roles: ``api`` serves ``/admin/reconciliation/*`` to the gateway;
``worker`` consumes events, runs the janitor on an interval and refreshes the discrepancy gauge. One
process may hold both; any number of workers may share one database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from datetime import timedelta

from aiohttp import web
from billing_runtime.app import service_app
from billing_runtime.bus import Bus
from billing_runtime.metrics import Metrics
from billing_runtime.plumbing import Plumbing
from billing_runtime.status import add_status_route
from sqlalchemy.ext.asyncio import AsyncEngine

from reconciliation_svc.api.routes import setup_routes
from reconciliation_svc.db.models import heartbeats, outbox
from reconciliation_svc.events.consumers import EVENT_BINDING_KEYS, EVENTS_QUEUE, events_handler
from reconciliation_svc.keys import janitor_key, metrics_key, plumbing_key, settings_key, uow_key
from reconciliation_svc.metrics import ReconciliationMetrics
from reconciliation_svc.run_wiring import setup_runs
from reconciliation_svc.services.gauges import watch_discrepancies
from reconciliation_svc.services.janitor import Janitor
from reconciliation_svc.services.projection import ProjectionDeps
from reconciliation_svc.services.providers_http import ProvidersSync
from reconciliation_svc.services.uow import ReconUnitOfWork
from reconciliation_svc.settings import Settings
from reconciliation_svc.status import status_source

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
        heartbeats=heartbeats,
        role="+".join(sorted(roles)),
        heartbeat_interval=settings.heartbeat_interval,
    )

    def uow() -> ReconUnitOfWork:
        assert plumbing.sessionmaker is not None
        return ReconUnitOfWork(plumbing.sessionmaker, outbox)

    schedule = settings.janitor_schedule
    providers = ProvidersSync(
        settings.providers_url, settings.providers_internal_secret.get_secret_value(), settings.request_timeout
    )
    janitor = Janitor(
        uow,
        providers,
        schedule,
        recon_metrics,
        batch=settings.janitor_batch_size,
        # A claimed object is another worker's again only after every call of a pass could have timed out.
        lease=timedelta(seconds=2 * settings.request_timeout + 60),
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
    app[uow_key] = uow
    app[janitor_key] = janitor

    async def providers_client(_app: web.Application) -> AsyncIterator[None]:
        # Opened before the plumbing (cleanup contexts run in order), so the janitor's loop always finds
        # it; closed after the loop has stopped.
        await providers.open()
        yield
        await providers.close()

    app.cleanup_ctx.append(providers_client)
    if "worker" in roles:
        deps = ProjectionDeps(uow=uow, first_check=schedule.first)
        plumbing.add_consumer(EVENTS_QUEUE, EVENT_BINDING_KEYS, events_handler(deps, metrics))
        plumbing.add_task("janitor", lambda: janitor.run(settings.janitor_interval, plumbing.runs))
        plumbing.add_task("gauges", lambda: watch_discrepancies(uow, recon_metrics, settings.metrics_interval))
    app.cleanup_ctx.append(plumbing.ctx)
    if "api" in roles:
        setup_routes(app)
        add_status_route(app, status_source(settings, plumbing))
    setup_runs(app, settings, plumbing, metrics, roles)
    return app
