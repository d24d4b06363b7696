"""Request ids, trace context and per-route HTTP metrics (RED: rate, errors, duration by route template)."""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware
from opentelemetry.trace import SpanKind

from billing_runtime import tracing
from billing_runtime.keys import request_id_key
from billing_runtime.log_context import bind, unbind
from billing_runtime.metrics import Metrics

log = logging.getLogger(__name__)
# The label of a request no route matched (a 404, a 405): one label, not one per path tried.
UNMATCHED_ROUTE = "unmatched"

REQUEST_ID_HEADER = "X-Request-Id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Echo a sane ``X-Request-Id`` or make one; it is on every response, errors included."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = given if _VALID_REQUEST_ID.fullmatch(given) else "req_" + secrets.token_hex(12)
    request[request_id_key] = request_id
    # Outermost: what the inner middlewares and the handler bind (tenant, payment) lasts until here.
    token = bind(request_id=request_id)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers[REQUEST_ID_HEADER] = request_id
        raise
    finally:
        unbind(token)
    response.headers[REQUEST_ID_HEADER] = request_id
    return response


def route_template(request: web.Request) -> str:
    """The matched route's template (``/v1/payments/{payment_id}``), never the raw path: a label and a
    span name of bounded cardinality that names no id or token."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED_ROUTE


@web.middleware
async def trace_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Continue the caller's trace (W3C ``traceparent``; a new one when there is none) in a server span
    named for the route template, and put the payment id of the route, if any, in the log context."""
    with tracing.span(
        f"{request.method} {route_template(request)}", parent=tracing.extract(request.headers), kind=SpanKind.SERVER
    ):
        bind(payment_id=request.match_info.get("payment_id"))  # until the request ends (request id middleware)
        return await handler(request)


def metrics_middleware(metrics: Metrics) -> Middleware:
    """Count and time requests, labelled by route template (bounded cardinality), not raw path."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            route = route_template(request)
            seconds = time.perf_counter() - started
            metrics.observe_http(request.method, route, status, seconds)
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s %s answered %d in %.1f ms", request.method, route, status, seconds * 1000)

    return middleware
