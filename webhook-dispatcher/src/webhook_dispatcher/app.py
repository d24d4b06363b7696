"""The composition root of webhook-dispatcher: ``create_app`` wires settings, plumbing, the delivery
worker and routes. Roles: ``api`` serves ``/v1/webhook-*``; ``worker`` consumes domain events and
delivers webhooks. One process may hold both; any number of workers may share one database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from datetime import timedelta

import aiohttp
from aiohttp import web
from billing_runtime.app import service_app
from billing_runtime.bus import Bus
from billing_runtime.metrics import Metrics
from billing_runtime.notifications import invalidated_on_notify
from billing_runtime.outbox import Notifier, listen_for_notifications
from billing_runtime.plumbing import Plumbing
from billing_runtime.status import add_status_route
from sqlalchemy.ext.asyncio import AsyncEngine

from webhook_dispatcher.api.routes import setup_routes
from webhook_dispatcher.crypto import SecretBox
from webhook_dispatcher.db.models import heartbeats, outbox
from webhook_dispatcher.events.consumers import EVENT_BINDING_KEYS, EVENTS_QUEUE, events_handler
from webhook_dispatcher.keys import deps_key, dispatcher_key, plumbing_key, settings_key
from webhook_dispatcher.metrics import WebhookMetrics
from webhook_dispatcher.services.deps import WebhookDeps
from webhook_dispatcher.services.dispatcher import DispatchConfig, Dispatcher
from webhook_dispatcher.services.endpoint_copies import CHANNEL as ENDPOINTS_CHANNEL
from webhook_dispatcher.services.endpoint_copies import EndpointCopies
from webhook_dispatcher.services.transport import create_client_session
from webhook_dispatcher.services.uow import WebhooksUnitOfWork
from webhook_dispatcher.settings import Settings
from webhook_dispatcher.status import status_source

INTERNAL_AUDIENCE = "webhooks"
# PostgreSQL NOTIFY channel: "deliveries became due", so workers in other processes start at once
# instead of at their next poll.
WAKE_CHANNEL = "webhooks_deliveries"


def dispatch_config(settings: Settings) -> DispatchConfig:
    return DispatchConfig(
        schedule=settings.schedule,
        jitter=settings.retry_jitter,
        max_retry_after=settings.max_retry_after,
        request_timeout=settings.request_timeout,
        lease=timedelta(seconds=settings.lease_seconds),
        per_endpoint=settings.max_concurrency_per_endpoint,
        concurrency=settings.worker_concurrency,
        poll_interval=settings.dispatch_poll_interval,
        idle_interval=settings.dispatch_idle_interval,
        disable_after=timedelta(hours=settings.disable_after_hours),
        excerpt_bytes=settings.response_excerpt_bytes,
        batch=settings.dispatch_batch_size,
    )


def create_app(
    settings: Settings,
    *,
    engine: AsyncEngine | None = None,
    bus: Bus | None = None,
    roles: Iterable[str] = ("api", "worker"),
) -> web.Application:
    roles = set(roles)
    box = SecretBox(settings.encryption_key.get_secret_value())
    metrics = Metrics("webhooks")
    webhook_metrics = WebhookMetrics(metrics)
    plumbing = Plumbing(
        service="webhooks",
        database_url=settings.database_url,
        pool_size=settings.database_pool_size,
        bus_url=settings.bus_url,
        metrics=metrics,
        # The worker publishes what it decides on its own (``endpoint.disabled``, for the tenant's event
        # log) and relays it; the API role emits nothing, so it runs no relay and no notifier.
        outbox=outbox if "worker" in roles else None,
        # Only the worker's own commits emit, and they wake its relay directly: nobody to listen for.
        relay_listens=False,
        poll_interval=settings.outbox_poll_interval,
        engine=engine,
        bus=bus,
        heartbeats=heartbeats,
        role="+".join(sorted(roles)),
        heartbeat_interval=settings.heartbeat_interval,
    )

    def uow() -> WebhooksUnitOfWork:
        assert plumbing.sessionmaker is not None
        return WebhooksUnitOfWork(plumbing.sessionmaker, outbox, on_commit=plumbing.after_commit)

    client: list[aiohttp.ClientSession] = []

    def session() -> aiohttp.ClientSession:
        return client[0]

    dispatcher: Dispatcher | None = None
    if "worker" in roles:
        dispatcher = Dispatcher(uow, box, dispatch_config(settings), webhook_metrics, session)
    notifier = Notifier(settings.database_url, WAKE_CHANNEL)

    def wake() -> None:
        if dispatcher is not None:
            dispatcher.wake()
        notifier.request()

    copies = EndpointCopies(max_age=settings.endpoint_cache_seconds)
    deps = WebhookDeps(
        uow=uow,
        box=box,
        allow_http=settings.allow_http,
        address_policy=settings.address_policy,
        rotation_grace=timedelta(hours=settings.secret_rotation_grace_hours),
        max_endpoints_per_tenant=settings.max_endpoints_per_tenant,
        replay_batch_size=settings.replay_batch_size,
        wake=wake,
        metrics=webhook_metrics,
        endpoints=copies,
        intake=dispatcher if settings.lease_at_ingest else None,
    )
    plumbing.add_task("notify", notifier.run)

    checks = {"database": plumbing.check_database}
    if "worker" in roles:
        checks["bus"] = plumbing.check_bus
    app = service_app(
        metrics,
        checks=checks,
        internal_secret=settings.internal_secret.get_secret_value(),
        internal_audience=INTERNAL_AUDIENCE,
        # Only the gateway calls the dispatcher (the tenants' endpoint and delivery routes).
        internal_issuers={"gateway"},
    )
    app[settings_key] = settings
    app[plumbing_key] = plumbing
    app[deps_key] = deps

    if dispatcher is not None:
        app[dispatcher_key] = dispatcher
        worker = dispatcher

        async def http_client(_app: web.Application) -> AsyncIterator[None]:
            # Opened before the plumbing (cleanup contexts run in order), so the delivery loop
            # always finds it; closed after the loop has stopped.
            client.append(create_client_session(policy=settings.address_policy, limit=settings.worker_concurrency))
            yield
            await client.pop().close()

        app.cleanup_ctx.append(http_client)
        plumbing.add_consumer(EVENTS_QUEUE, EVENT_BINDING_KEYS, events_handler(deps, metrics))
        # Stopped gracefully: in-flight deliveries finish and are recorded within the grace period.
        plumbing.add_task("dispatch", worker.run, stop=worker.stop)
        plumbing.add_task("backlog", worker.watch_backlog)
    app.cleanup_ctx.append(plumbing.ctx)
    if dispatcher is not None:
        woken = dispatcher

        async def listen(_app: web.Application) -> AsyncIterator[None]:
            # Polling still runs beside it, so a lost notification only delays a delivery.
            # Its own NOTIFYs are skipped: whoever sent them has already woken this worker directly.
            close = await listen_for_notifications(
                settings.database_url, WAKE_CHANNEL, woken.wake, ignore=notifier.sent
            )
            yield
            result = close()
            if asyncio.iscoroutine(result):
                await result

        app.cleanup_ctx.append(listen)
        if settings.endpoint_cache_seconds > 0:
            app.cleanup_ctx.append(invalidated_on_notify(settings.database_url, ENDPOINTS_CHANNEL, copies))
    if "api" in roles:
        setup_routes(app)
        add_status_route(app, status_source(settings, plumbing))
    return app
