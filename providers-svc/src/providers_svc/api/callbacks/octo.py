"""``POST /billing/octo``: Octo's notify callback (PROTOCOLS.md §3.4), answered as Octo expects: HTTP 200
with ``{"accept_status": ...}`` for ``waiting_for_capture`` and ``{}`` otherwise.

Octo documents no error answer for a callback; what we refuse gets a 400 ``{"error": <reason>}`` (bad
input, counted by reason, nothing changed), and what we cannot confirm yet (Octo or our database
unreachable) a 503, which Octo, like any sender waiting for a 200, sends again."""

from __future__ import annotations

import logging

from aiohttp import web
from billing_runtime.outages import is_database_outage

from providers_svc.adapters.octo import NAME
from providers_svc.domain.transactions import CallbackResult
from providers_svc.keys import metrics_key, octo_callbacks_key
from providers_svc.protocols.octo.callbacks import CallbackRejected, answer
from providers_svc.services.callbacks import TransactionBusy
from providers_svc.services.octo import OctoRetryLater

log = logging.getLogger(__name__)


def _error(status: int, error: str, **headers: str) -> web.Response:
    return web.json_response({"error": error}, status=status, headers=headers or None)


async def octo_callback(request: web.Request) -> web.Response:
    metrics = request.app[metrics_key]
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        metrics.callbacks_rejected.labels(NAME, "too_large").inc()
        return _error(413, "payload_too_large")
    try:
        done = await request.app[octo_callbacks_key].handle(raw)
    except CallbackRejected as exc:
        log.warning("octo callback rejected: %s", exc.reason)
        metrics.callbacks_rejected.labels(NAME, exc.reason).inc()
        return _error(400, exc.reason)
    except (OctoRetryLater, TransactionBusy) as exc:
        log.warning("octo callback not processed yet: %s", exc)
        return _error(503, "temporarily_unavailable", **{"Retry-After": "5"})
    except Exception as exc:
        if not is_database_outage(exc):
            raise
        log.warning("octo callback not processed: %s", type(exc).__name__)
        return _error(503, "temporarily_unavailable", **{"Retry-After": "5"})
    if done.handled is None:
        metrics.callbacks_received.labels(NAME, CallbackResult.IGNORED.value).inc()
    else:
        metrics.callbacks_received.labels(NAME, done.handled.result.value).inc()
        if done.handled.anomaly is not None:
            metrics.anomalies.labels(NAME, done.handled.anomaly).inc()
        if done.handled.result is CallbackResult.LIVEMODE_REFUSED:
            # A test account's word never moves a live payment (API.md "Test mode and live mode").
            return _error(400, "livemode_refused")
    return web.Response(body=answer(done.accept), content_type="application/json")
