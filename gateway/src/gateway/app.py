"""The gateway's composition root: ``create_app`` builds everything the process needs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from argon2 import PasswordHasher
from billing_runtime.app import service_app
from billing_runtime.internal_auth import InternalSigner
from billing_runtime.notifications import NotificationListener
from billing_runtime.plumbing import Plumbing
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.access_tokens import add_token_routes
from gateway.admin import add_admin_routes, require_ops_access
from gateway.admin_accounts import add_account_routes
from gateway.admin_reconciliation import add_reconciliation_routes
from gateway.api_docs import add_docs_routes
from gateway.auth import TokenCodec
from gateway.keys import (
    access_cache_key,
    engine_key,
    internal_signer_key,
    metrics_key,
    rate_limiter_key,
    readiness_checks_key,
    secret_hasher_key,
    sessionmaker_key,
    settings_key,
    token_codec_key,
    token_throttle_key,
    upstreams_key,
)
from gateway.metrics import GatewayMetrics
from gateway.platform_status import add_status_routes
from gateway.proxy import add_proxy_routes
from gateway.ratelimit import RateLimiter
from gateway.settings import Settings
from gateway.tenant_access import CHANNEL, TenantAccessCache
from gateway.tenant_secrets import SecretHasher
from gateway.token_throttle import TokenThrottle, parse_networks
from gateway.upstreams import PAYMENTS, PROVIDERS, RECONCILIATION, WEBHOOKS, close_upstreams, open_upstreams

log = logging.getLogger(__name__)


def create_app(settings: Settings, *, engine: AsyncEngine | None = None) -> web.Application:
    """The gateway application. ``engine`` is used (and left open) when given, as tests and the
    embedded runner may do; otherwise one is created from ``settings.database_url`` and disposed."""
    metrics = GatewayMetrics()
    plumbing = Plumbing(
        service="gateway",
        database_url=settings.database_url,
        pool_size=settings.database_pool_size,
        metrics=metrics,
        engine=engine,
    )

    def upstream_check(name: str) -> Callable[[], Awaitable[None]]:
        async def check() -> None:
            await app[upstreams_key][name].check()

        return check

    checks = {
        "database": plumbing.check_database,
        **{name: upstream_check(name) for name in (PAYMENTS, PROVIDERS, WEBHOOKS)},
    }
    app = service_app(
        metrics,
        checks=checks,
        # The gateway is the public edge: it signs internal tokens, it never accepts them.
        internal_secret=None,
        internal_audience="gateway",
        body_limit=settings.body_limit,
        ops_guard=require_ops_access,
    )
    app[readiness_checks_key] = checks

    app[settings_key] = settings
    app[metrics_key] = metrics
    app[token_codec_key] = TokenCodec(
        {kid: key.get_secret_value() for kid, key in settings.jwt_keys.items()},
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl=settings.token_ttl,
    )
    internal_keys = {
        PAYMENTS: settings.payments_internal_secret.get_secret_value(),
        WEBHOOKS: settings.webhooks_internal_secret.get_secret_value(),
        PROVIDERS: settings.providers_internal_secret.get_secret_value(),
    }
    if settings.reconciliation_internal_secret is not None:
        internal_keys[RECONCILIATION] = settings.reconciliation_internal_secret.get_secret_value()
    app[internal_signer_key] = InternalSigner(internal_keys, issuer="gateway")
    app[secret_hasher_key] = hasher = SecretHasher(
        PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        ),
        concurrency=settings.hash_concurrency,
        queue=settings.hash_queue,
        rate=RateLimiter(settings.hash_rate, settings.hash_burst),
        on_busy=metrics.token_requests_refused.labels("busy").inc,
    )
    app[token_throttle_key] = TokenThrottle(
        per_client=RateLimiter(settings.token_rate_per_client, settings.token_burst_per_client),
        per_app=RateLimiter(settings.token_rate_per_app, settings.token_burst_per_app),
        trusted_proxies=parse_networks(settings.trusted_proxies),
        metrics=metrics,
    )
    app[rate_limiter_key] = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)

    async def database_ctx(app: web.Application) -> AsyncIterator[None]:
        # Runs after plumbing.ctx has opened the engine and its sessionmaker.
        assert plumbing.sessionmaker is not None
        assert plumbing.engine is not None
        app[sessionmaker_key] = plumbing.sessionmaker
        app[engine_key] = plumbing.engine
        # The copies of the tenants' access rows, dropped on every announced change (tenant_access).
        cache = TenantAccessCache(plumbing.engine, max_age=settings.tenant_cache_seconds, listening=lambda: False)
        listener = NotificationListener(settings.database_url, CHANNEL, cache.invalidate)
        cache.listening = lambda: listener.connected
        app[access_cache_key] = cache
        # Until it connects (the database may be away), every request reads its tenant row.
        async with listener.running("gateway:tenant-access"):
            yield

    async def hasher_ctx(_app: web.Application) -> AsyncIterator[None]:
        hasher.start()
        try:
            yield
        finally:
            hasher.close()

    async def upstreams_ctx(app: web.Application) -> AsyncIterator[None]:
        app[upstreams_key] = upstreams = open_upstreams(settings)
        try:
            yield
        finally:
            await close_upstreams(upstreams)

    app.cleanup_ctx.extend([plumbing.ctx, database_ctx, hasher_ctx, upstreams_ctx])

    add_admin_routes(app)
    add_account_routes(app)
    add_reconciliation_routes(app)
    add_status_routes(app)
    add_token_routes(app)
    add_docs_routes(app)
    add_proxy_routes(app)
    return app
