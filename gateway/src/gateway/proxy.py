"""Forwarding: which public paths go to which upstream, with what credentials, and how answers and
failures come back. Upstream problem+json bodies are passed through unchanged."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from aiohttp import ClientError, ClientTimeout, web
from billing_contracts.envelope import utcnow
from billing_runtime import tracing
from billing_runtime.internal_auth import INTERNAL_HEADER
from billing_runtime.keys import request_id_key
from billing_runtime.log_context import bind
from billing_runtime.middlewares import REQUEST_ID_HEADER
from billing_runtime.problems import ProblemError

from gateway.auth import authenticate_tenant
from gateway.callback_refusals import echoes_ids, provider_of, refusal
from gateway.keys import (
    access_cache_key,
    internal_signer_key,
    metrics_key,
    rate_limiter_key,
    settings_key,
    token_codec_key,
    upstreams_key,
)
from gateway.tenant_access import TenantAccess, check_access
from gateway.upstreams import PAYMENTS, PROVIDERS, WEBHOOKS

log = logging.getLogger(__name__)

FORWARDED_REQUEST_HEADERS = (
    "Content-Type",
    "Idempotency-Key",
    "Stripe-Signature",
    "Sandbox-Signature",
    "Accept",
    "Accept-Language",
)
# What the simulators' fake provider APIs read from a request (``/simulators`` only).
SIMULATOR_API_HEADERS = ("Auth", "X-Simulator-Outcome")
RETURNED_RESPONSE_HEADERS = ("Content-Type", "Idempotent-Replayed", "Retry-After", "Location")
# The payer pages' own protections (no framing, no caching of a link that is the payer's credential,
# no referrer, a strict CSP): they must reach the browser, which sees the pages only through us.
PAGE_RESPONSE_HEADERS = (
    "Cache-Control",
    "Content-Security-Policy",
    "Referrer-Policy",
    "X-Content-Type-Options",
    "X-Frame-Options",
)
UPSTREAM_RETRY_AFTER = "2"
# Stripe's events (an invoice with many lines) may be larger than the gateway's body limit: they pass
# up to providers-svc's own limit for them (``api/callbacks/stripe.py``), 413 beyond; read whole when
# their length is declared, streamed (and counted) when it is not.
STRIPE_EVENT_LIMIT = 512 * 1024


@dataclass(frozen=True)
class ProxyRoute:
    """``prefix`` and everything below it go to ``upstream`` with the same path and query."""

    prefix: str
    upstream: str
    # A tenant access token is required and the internal token names that tenant.
    tenant: bool
    # The upstream gets an X-Internal-Auth token (tenant routes always do).
    internal: bool
    # The client's Authorization header is passed on (Payme authenticates its callbacks with Basic auth).
    pass_authorization: bool = False
    # HTML pages for a browser: their security headers come back too (PAGE_RESPONSE_HEADERS).
    pages: bool = False
    # Request headers passed on beyond FORWARDED_REQUEST_HEADERS, for this route only.
    passed_headers: tuple[str, ...] = ()
    # Provider callbacks: what the gateway itself refuses is answered in the provider's own format.
    callbacks: bool = False


ROUTES = (
    ProxyRoute("/v1/payments", PAYMENTS, tenant=True, internal=True),
    ProxyRoute("/v1/refunds", PAYMENTS, tenant=True, internal=True),
    ProxyRoute("/v1/events", PAYMENTS, tenant=True, internal=True),
    ProxyRoute("/v1/webhook-endpoints", WEBHOOKS, tenant=True, internal=True),
    ProxyRoute("/v1/webhook-deliveries", WEBHOOKS, tenant=True, internal=True),
    # The tenant's own Stripe objects, projected by providers-svc from its accounts' webhooks.
    ProxyRoute("/v1/stripe", PROVIDERS, tenant=True, internal=True),
    # The providers the tenant's payments are offered, in its mode (providers-svc's directory).
    ProxyRoute("/v1/providers", PROVIDERS, tenant=True, internal=True),
    # The checkout token in the path is the payer's only credential.
    ProxyRoute("/v1/checkout", PAYMENTS, tenant=False, internal=True),
    # Provider callbacks and the sandbox bank's pages: providers authenticate by their own signatures.
    ProxyRoute("/billing", PROVIDERS, tenant=False, internal=False, pass_authorization=True, callbacks=True),
    ProxyRoute("/sandbox", PROVIDERS, tenant=False, internal=False, pages=True),
    # The provider simulators' payer pages and fake provider APIs (test tenants only, API.md). Our own
    # adapters call those APIs through here: the Click Merchant API authenticates by its ``Auth``
    # header, and a refund's test outcome travels as ``X-Simulator-Outcome`` (providers-svc README
    # "Refunds"); without them every Click status or reversal at the simulator is refused.
    ProxyRoute(
        "/simulators", PROVIDERS, tenant=False, internal=False, pages=True, passed_headers=SIMULATOR_API_HEADERS
    ),
    # Payer pages of real provider accounts (Stripe's for flow=payment_intent), live tenants' too: not
    # /simulators (test tenants only) nor /sandbox (the sandbox bank's); the unguessable link is the
    # payer's credential, as on the other payer pages.
    ProxyRoute("/pay", PROVIDERS, tenant=False, internal=False, pages=True),
)


def add_proxy_routes(app: web.Application) -> None:
    for route in ROUTES:
        handler = _forwarder(route)
        app.router.add_route("*", route.prefix, handler)
        app.router.add_route("*", route.prefix + "/{tail:.*}", handler)


def _forwarder(route: ProxyRoute) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        return await forward(request, route)

    return handler


# A control character (a NUL above all) names nothing upstream and cannot reach its database.
_CONTROL = re.compile("[\x00-\x1f\x7f]")
# A dot segment anywhere in the path.
_DOT_SEGMENT = re.compile(r"(?:^|/)\.{1,2}(?:/|$)")


def _is_safe_path(request: web.Request) -> bool:
    # aiohttp routes on the decoded path but we forward the raw one, and it normalizes neither dot
    # segments nor encoded slashes: either could steer a request past its prefix on the upstream.
    raw_path = request.raw_path.partition("?")[0].lower()
    if "%2f" in raw_path or "%5c" in raw_path or "\\" in request.path:
        return False
    # (Regular expressions: a per-character loop here was 2 % of the gateway's CPU under load.)
    path = request.path
    return _CONTROL.search(path) is None and _DOT_SEGMENT.search(path) is None


async def forward(request: web.Request, route: ProxyRoute) -> web.Response:
    if not route.callbacks:
        return await _forward(request, route)
    try:
        return await _forward(request, route)
    except (ProblemError, web.HTTPException) as exc:
        # A provider reads only its own format (API.md): never problem+json to a provider.
        headers = exc.headers if isinstance(exc, ProblemError) else {}
        # A 503 came after the body was read whole (aiohttp keeps it): its ids are echoed where the
        # provider's answer carries them (Payme's and Click's bodies are read whole, never streamed).
        body = await request.read() if exc.status >= 500 and echoes_ids(request.path) else None
        answer = refusal(request.path, exc.status, body, dict(headers))
        if answer is None:
            raise
        reason = "unavailable" if exc.status >= 500 else "too_large" if exc.status == 413 else "bad_path"
        request.app[metrics_key].callbacks_refused.labels(provider_of(request.path), reason).inc()
        return answer


async def _forward(request: web.Request, route: ProxyRoute) -> web.Response:
    if not _is_safe_path(request):
        raise ProblemError(404, "not_found", "No such route")  # before any credential is looked at
    app = request.app
    tenant: TenantAccess | None = None
    if route.tenant:
        token = authenticate_tenant(request, app[token_codec_key])
        _throttle(request, token.tenant_id)
        row = await app[access_cache_key].row(token.tenant_id)
        tenant = check_access(token, row, utcnow())
        bind(tenant_id=tenant.tenant_id)  # for the rest of the request, its access line included
    stripe = route.callbacks and request.path.startswith("/billing/stripe")
    return await relay(
        request,
        route.upstream,
        tenant,
        internal=route.internal,
        pass_authorization=route.pass_authorization,
        pages=route.pages,
        passed_headers=route.passed_headers,
        body_limit=STRIPE_EVENT_LIMIT if stripe else None,
    )


async def relay(
    request: web.Request,
    upstream_name: str,
    tenant: TenantAccess | None,
    *,
    internal: bool,
    pass_authorization: bool = False,
    pages: bool = False,
    stream_limit: int | None = None,
    body_limit: int | None = None,
    passed_headers: tuple[str, ...] = (),
    kept_headers: tuple[str, ...] = (),
) -> web.Response:
    """The request, on the same path, to ``upstream_name``; its answer back (503 when unreachable).
    ``kept_headers``: upstream response headers the caller reads (and must drop before answering).
    ``internal``: with an internal token naming ``tenant`` (or no tenant: a platform call).
    ``stream_limit``: an upload, streamed to the upstream as it arrives, up to that many bytes (413
    beyond), instead of read whole under the app's ``client_max_size``, with a timeout of its own.
    ``body_limit``: a body read whole up to that many bytes when its length is declared (a chunked one
    is streamed and counted as an upload is), under the usual timeout."""
    if not _is_safe_path(request):
        raise ProblemError(404, "not_found", "No such route")
    app = request.app
    body: bytes | BoundedBody
    if stream_limit is None and body_limit is None:
        # Bounded by client_max_size whether or not the client sent a Content-Length (413 beyond it).
        body = await request.read()
    elif body_limit is not None and request.content_length is not None and request.content_length <= body_limit:
        # Declared and within the limit (every event Stripe sends): read whole, as the parser stops at
        # the declared length; a chunked upload to the upstream cost both processes more than the copy.
        body = await request.content.read()
    else:
        body = BoundedBody(request, stream_limit or body_limit or 0)

    forwarded = FORWARDED_REQUEST_HEADERS + passed_headers
    headers = {name: request.headers[name] for name in forwarded if name in request.headers}
    if pass_authorization and "Authorization" in request.headers:
        headers["Authorization"] = request.headers["Authorization"]
    headers[REQUEST_ID_HEADER] = request[request_id_key]
    # The upstream continues this request's trace (docs/INTERNAL.md "Trace context").
    tracing.inject(headers)
    upstream = app[upstreams_key][upstream_name]
    if internal:
        # The tenant's mode travels in the token: what the service creates for it is live or test.
        # A checkout call names no tenant; payments-svc knows each payment's mode itself.
        headers[INTERNAL_HEADER] = app[internal_signer_key].token(
            audience=upstream.name,
            tenant_id=tenant.tenant_id if tenant else None,
            tenant_name=tenant.display_name if tenant else None,
            livemode=tenant.livemode if tenant else False,
        )

    try:
        async with upstream.session.request(
            request.method,
            upstream.url(request.raw_path),
            data=body or None,
            headers=headers,
            allow_redirects=False,
            timeout=_timeout(request, stream_limit is not None, upstream.session.timeout),
        ) as response:
            payload = await response.read()
            status = response.status
            names = RETURNED_RESPONSE_HEADERS + (PAGE_RESPONSE_HEADERS if pages else ()) + kept_headers
            returned = {name: response.headers[name] for name in names if name in response.headers}
    except (ClientError, TimeoutError) as exc:
        if isinstance(body, BoundedBody) and body.exceeded:
            raise body.too_large() from None
        reason = "timeout" if isinstance(exc, TimeoutError) else "unreachable"
        app[metrics_key].upstream_failures.labels(upstream.name, reason).inc()
        log.warning("%s %s: upstream %s %s: %r", request.method, request.path, upstream.name, reason, exc)
        raise ProblemError(
            503,
            "upstream_unavailable",
            f"The {upstream.name} service is unavailable; retry later",
            headers={"Retry-After": UPSTREAM_RETRY_AFTER},
        ) from exc
    return web.Response(status=status, body=payload, headers=returned)


def _timeout(request: web.Request, upload: bool, default: ClientTimeout) -> ClientTimeout:
    """An upload (megabytes from a slow client, then parsed and staged upstream) has a timeout of its
    own, ``statement_upload_timeout``; any other request keeps the session's (``default``)."""
    if not upload:
        return default
    settings = request.app[settings_key]
    return ClientTimeout(total=settings.statement_upload_timeout, sock_connect=settings.upstream_connect_timeout)


class BoundedBody:
    """A request body streamed to the upstream as it arrives, refused (413) past ``limit``: up front when
    the client declares a larger Content-Length, else as soon as the bytes counted pass it (the stream
    then breaks off, so the upstream sees a request cut short and discards it)."""

    def __init__(self, request: web.Request, limit: int) -> None:
        if request.content_length is not None and request.content_length > limit:
            raise ProblemError(413, "payload_too_large", f"The request body is larger than {limit} bytes")
        self._request = request
        self._limit = limit
        self.exceeded = False

    def too_large(self) -> ProblemError:
        return ProblemError(413, "payload_too_large", f"The request body is larger than {self._limit} bytes")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in self._request.content.iter_chunked(64 * 1024):
            seen += len(chunk)
            if seen > self._limit:
                self.exceeded = True
                raise self.too_large()
            yield chunk


def _throttle(request: web.Request, tenant_id: str) -> None:
    wait = request.app[rate_limiter_key].acquire(tenant_id)
    if wait is not None:
        request.app[metrics_key].rate_limited.inc()
        raise ProblemError(429, "rate_limited", "Too many requests for this tenant", headers={"Retry-After": str(wait)})
