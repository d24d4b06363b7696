"""The application factory: everything the app needs is built here, nothing lives at module level."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import aiohttp_jinja2
import jinja2
from aiohttp import web
from billing_runtime.app import service_app
from billing_runtime.key_ring import KeyRing
from billing_runtime.metrics import Metrics
from billing_runtime.plumbing import Plumbing
from yarl import URL

from checkout_web.assets import load_asset
from checkout_web.dashboard.api import TenantApi
from checkout_web.dashboard.clients import parse_networks
from checkout_web.dashboard.formatting import FILTERS
from checkout_web.dashboard.guard import dashboard_middleware
from checkout_web.dashboard.routes import setup_dashboard_routes
from checkout_web.dashboard.sessions import Sessions, sign_in_key
from checkout_web.db.store import LoginCounter, SessionStore
from checkout_web.errors import html_errors_middleware
from checkout_web.gateway_client import GatewayClient
from checkout_web.keys import engine_key, gateway_key, login_counter_key, sessions_key, settings_key, tenant_api_key
from checkout_web.routes import setup_routes
from checkout_web.security import security_headers
from checkout_web.settings import Settings


def create_app(settings: Settings) -> web.Application:
    metrics = Metrics("checkout-web")
    plumbing = Plumbing(
        service="checkout-web",
        database_url=settings.database_url,
        pool_size=settings.database_pool_size,
        metrics=metrics,
    )
    # Its database holds the dashboard's sessions: without it nobody can sign in, so it is a readiness
    # check. A gateway outage is not: payers and tenants see a friendly 503 page instead.
    app = service_app(
        metrics, checks={"database": plumbing.check_database}, internal_secret=None, internal_audience="checkout"
    )
    app[settings_key] = settings
    # Innermost, so page failures become HTML before the runtime's problem+json middleware sees them.
    app.middlewares.append(html_errors_middleware)
    app.middlewares.append(dashboard_middleware)
    app.on_response_prepare.append(security_headers())

    sdk = load_asset("checkout.js", "application/javascript")
    embedded_script = load_asset("embedded.js", "application/javascript")
    stylesheet = load_asset("checkout.css", "text/css")
    dashboard_css = load_asset("dashboard.css", "text/css")
    dashboard_js = load_asset("dashboard.js", "application/javascript")
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("checkout_web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.globals["stylesheet_version"] = stylesheet.version
    env.globals["embedded_script_version"] = embedded_script.version
    env.globals["dashboard_css_version"] = dashboard_css.version
    env.globals["dashboard_js_version"] = dashboard_js.version
    env.filters.update(FILTERS)
    setup_routes(
        app,
        sdk=sdk,
        stylesheet=stylesheet,
        embedded_script=embedded_script,
        asset_max_age=settings.asset_max_age,
    )
    setup_dashboard_routes(app, stylesheet=dashboard_css, script=dashboard_js, asset_max_age=settings.asset_max_age)
    ring = KeyRing(settings.session_keys.get_secret_value())

    async def database_ctx(app: web.Application) -> AsyncIterator[None]:
        assert plumbing.engine is not None
        app[engine_key] = plumbing.engine
        app[sessions_key] = Sessions(
            store=SessionStore(plumbing.engine),
            ring=ring,
            sign_in_key=sign_in_key(settings.session_keys.get_secret_value()),
            idle=timedelta(seconds=settings.session_idle_seconds),
            max_age=timedelta(seconds=settings.session_max_seconds),
            trusted=parse_networks(settings.trusted_proxy_list),
        )
        app[login_counter_key] = LoginCounter(plumbing.engine)
        yield

    app.cleanup_ctx.extend([plumbing.ctx, database_ctx, _gateway_ctx])
    return app


async def _gateway_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[settings_key]
    timeout = aiohttp.ClientTimeout(total=settings.request_timeout, connect=settings.connect_timeout)
    async with aiohttp.ClientSession(timeout=timeout, raise_for_status=False) as session:
        app[gateway_key] = GatewayClient(session, URL(settings.gateway_url))
        app[tenant_api_key] = TenantApi(
            session,
            URL(settings.gateway_url),
            timeout=settings.dashboard_timeout,
            connect_timeout=settings.connect_timeout,
        )
        yield
