"""The composition root of payments-svc: ``create_app`` wires settings, plumbing, use-case
dependencies and routes. Roles: ``api`` serves HTTP; ``worker`` relays the outbox, consumes provider
events and runs the sweepers. One process may hold both."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from datetime import timedelta
from typing import Any

from aiohttp import web
from billing_runtime.app import service_app
from billing_runtime.bus import Bus
from billing_runtime.metrics import Metrics
from billing_runtime.plumbing import Plumbing
from billing_runtime.status import add_status_route
from sqlalchemy.ext.asyncio import AsyncEngine

from payments_svc.api.routes import INTERNAL_EVENTS, setup_routes
from payments_svc.db.models import heartbeats, outbox
from payments_svc.events.consumers import (
    LOGGED_EVENT_KEYS,
    LOGGED_EVENTS_QUEUE,
    PROVIDER_EVENT_KEYS,
    PROVIDER_EVENTS_QUEUE,
    logged_event_handler,
    provider_outcome_handler,
)
from payments_svc.keys import checkout_deps_key, lifecycle_deps_key, plumbing_key, settings_key
from payments_svc.metrics import PaymentMetrics
from payments_svc.services.checkout import CheckoutDeps
from payments_svc.services.event_log import sequencer_loop
from payments_svc.services.lifecycle import LifecycleDeps
from payments_svc.services.providers import ProvidersPort
from payments_svc.services.providers_http import HttpProviders
from payments_svc.services.uow import PaymentsUnitOfWork
from payments_svc.settings import Settings
from payments_svc.status import status_source
from payments_svc.sweeper import expiry_loop, idempotency_pruning_loop


def issuers_of(settings: Settings) -> dict[str, Any]:
    """Who may call: the gateway (the tenant routes, checkout) with payments-svc's own key; and, when
    its key is configured, reconciliation-svc with a key of its own, to read every tenant's event log
    and nothing else (docs/INTERNAL.md "Trust")."""
    if settings.reconciliation_internal_secret is None:
        return {"internal_issuers": {"gateway"}}
    return {
        "internal_issuers": {"gateway", "reconciliation"},
        "confined_issuers": {"reconciliation": {INTERNAL_EVENTS}},
        "issuer_secrets": {"reconciliation": settings.reconciliation_internal_secret.get_secret_value()},
    }


def create_app(
    settings: Settings,
    *,
    engine: AsyncEngine | None = None,
    bus: Bus | None = None,
    providers: ProvidersPort | None = None,
    roles: Iterable[str] = ("api", "worker"),
) -> web.Application:
    roles = set(roles)
    metrics = Metrics("payments")
    plumbing = Plumbing(
        service="payments",
        database_url=settings.database_url,
        pool_size=settings.database_pool_size,
        bus_url=settings.bus_url,
        metrics=metrics,
        outbox=outbox,
        run_relay="worker" in roles,
        poll_interval=settings.outbox_poll_interval,
        engine=engine,
        bus=bus,
        heartbeats=heartbeats,
        role="+".join(sorted(roles)),
        heartbeat_interval=settings.heartbeat_interval,
    )

    def uow() -> PaymentsUnitOfWork:
        assert plumbing.sessionmaker is not None
        return PaymentsUnitOfWork(plumbing.sessionmaker, outbox, on_commit=plumbing.after_commit)

    http_providers = None
    if providers is None:
        http_providers = HttpProviders(
            settings.providers_url, settings.providers_internal_secret.get_secret_value(), settings.provider_timeout
        )
    port: ProvidersPort = providers if providers is not None else http_providers  # type: ignore[assignment]
    lifecycle = LifecycleDeps(
        uow=uow,
        providers=port,
        checkout_base_url=settings.checkout_base_url.rstrip("/"),
        metrics=PaymentMetrics(metrics),
    )
    checkout = CheckoutDeps(uow=uow, providers=port, checkout_base_url=lifecycle.checkout_base_url)

    checks = {"database": plumbing.check_database}
    if "worker" in roles:
        checks["bus"] = plumbing.check_bus
    app = service_app(
        metrics,
        checks=checks,
        internal_secret=settings.internal_secret.get_secret_value(),
        internal_audience="payments",
        # The gateway calls the tenant routes and checkout; reconciliation-svc reads every tenant's
        # event log, and nothing else (docs/INTERNAL.md "Trust").
        **issuers_of(settings),
    )
    app[settings_key] = settings
    app[plumbing_key] = plumbing
    app[lifecycle_deps_key] = lifecycle
    app[checkout_deps_key] = checkout

    if http_providers is not None:
        client = http_providers

        async def providers_client(_app: web.Application) -> AsyncIterator[None]:
            await client.open()
            yield
            await client.close()

        app.cleanup_ctx.append(providers_client)

    if "worker" in roles:
        plumbing.add_consumer(PROVIDER_EVENTS_QUEUE, PROVIDER_EVENT_KEYS, provider_outcome_handler(lifecycle, metrics))
        plumbing.add_consumer(LOGGED_EVENTS_QUEUE, LOGGED_EVENT_KEYS, logged_event_handler(lifecycle, metrics))
        plumbing.add_task("expiry", lambda: expiry_loop(lifecycle, settings.sweep_interval, plumbing.runs))
        plumbing.add_task("event-log", lambda: sequencer_loop(uow, settings.event_log_interval))
        plumbing.add_task(
            "idempotency-pruning",
            lambda: idempotency_pruning_loop(
                lifecycle, timedelta(hours=settings.idempotency_retention_hours), plumbing.runs
            ),
        )
    app.cleanup_ctx.append(plumbing.ctx)
    if "api" in roles:
        setup_routes(app)
        add_status_route(app, status_source(settings, plumbing))
    return app
