"""Turns failures on the payer's pages into HTML message pages. JSON and operational routes are left
to the runtime's problem+json middleware, which sits outside this one."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from checkout_web.gateway_client import CheckoutNotFound, GatewayUnavailable, UnexpectedGatewayResponse
from checkout_web.pages import Link, broken_page, message_page, not_found_page, unavailable_page

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_MACHINE_PREFIXES = ("/healthz", "/readyz", "/metrics")


def is_machine_path(path: str) -> bool:
    return path.startswith(_MACHINE_PREFIXES) or path.endswith(".json")


@web.middleware
async def html_errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if is_machine_path(request.path):
        return await handler(request)
    try:
        return await handler(request)
    except CheckoutNotFound:
        return not_found_page(request)
    except GatewayUnavailable:
        # A retry of a POST must not repost: send the payer back to the page they came from.
        retry = request.path.removesuffix("/pay") if request.method == "POST" else request.path_qs
        return unavailable_page(request, Link(retry, "Try again"))
    except UnexpectedGatewayResponse:
        return broken_page(request, 502)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status == 404:
            return not_found_page(request)
        return message_page(request, status=exc.status, title=exc.reason, message="This page cannot be shown.")
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return broken_page(request, 500)
