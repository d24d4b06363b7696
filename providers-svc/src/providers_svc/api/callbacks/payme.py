"""``POST /billing/payme``: Payme's Merchant API (JSON-RPC 2.0, PROTOCOLS.md §2). Every answer, errors
included, is HTTP 200 in Payme's format (``services.payme`` builds it), never problem+json."""

from __future__ import annotations

from aiohttp import web

from providers_svc.keys import metrics_key, payme_merchant_key
from providers_svc.protocols.payme.errors import PaymeError, PaymeErrorCode
from providers_svc.protocols.payme.jsonrpc import CONTENT_TYPE, error_response
from providers_svc.services.payme_accounts import PROVIDER


def _answer(body: bytes) -> web.Response:
    return web.Response(body=body, status=200, headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})


async def payme_callback(request: web.Request) -> web.Response:
    metrics = request.app[metrics_key]
    try:
        raw = await request.read() if request.method == "POST" else b""
    except web.HTTPRequestEntityTooLarge:
        metrics.callbacks_rejected.labels(PROVIDER, "too_large").inc()
        return _answer(error_response(None, PaymeError(PaymeErrorCode.INVALID_REQUEST)))
    answer = await request.app[payme_merchant_key].handle(request.method, raw, request.headers.get("Authorization"))
    if answer.rejected is not None:
        metrics.callbacks_rejected.labels(PROVIDER, answer.rejected).inc()
    if answer.result is not None:
        metrics.callbacks_received.labels(PROVIDER, answer.result).inc()
    return _answer(answer.body)
