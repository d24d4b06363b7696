"""The application factory: everything the app needs is built here, nothing lives at module level."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import aiohttp_jinja2
import jinja2
from aiohttp import web
from billing_runtime.app import service_app
from billing_runtime.metrics import Metrics
from yarl import URL

from checkout_web.assets import load_asset
from checkout_web.errors import html_errors_middleware
from checkout_web.gateway_client import GatewayClient
from checkout_web.keys import gateway_key, settings_key
from checkout_web.routes import setup_routes
from checkout_web.security import security_headers
from checkout_web.settings import Settings


def create_app(settings: Settings) -> web.Application:
    # No readiness checks: checkout-web owns no database or broker, and a gateway outage is already
    # shown to payers as a friendly 503 rather than by taking the pages out of rotation.
    app = service_app(Metrics("checkout-web"), checks={}, internal_secret=None, internal_audience="checkout")
    app[settings_key] = settings
    # Innermost, so page failures become HTML before the runtime's problem+json middleware sees them.
    app.middlewares.append(html_errors_middleware)
    app.on_response_prepare.append(security_headers())

    sdk = load_asset("checkout.js", "application/javascript")
    embedded_script = load_asset("embedded.js", "application/javascript")
    stylesheet = load_asset("checkout.css", "text/css")
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
    setup_routes(
        app,
        sdk=sdk,
        stylesheet=stylesheet,
        embedded_script=embedded_script,
        asset_max_age=settings.asset_max_age,
    )
    app.cleanup_ctx.append(_gateway_ctx)
    return app


async def _gateway_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[settings_key]
    timeout = aiohttp.ClientTimeout(total=settings.request_timeout, connect=settings.connect_timeout)
    async with aiohttp.ClientSession(timeout=timeout, raise_for_status=False) as session:
        app[gateway_key] = GatewayClient(session, URL(settings.gateway_url))
        yield
