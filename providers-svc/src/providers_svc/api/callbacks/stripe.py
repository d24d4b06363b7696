"""``POST /billing/stripe``: Stripe's webhook events (PROTOCOLS.md §4.3-4.5). Stripe reads only the
status: 2xx is delivered (duplicates, unknown types and events of unknown connected accounts too: they are
recorded, and a retry would not change them), 4xx and 5xx are retried. Bad input (no or a forged or stale
signature, a replay of a delivery already received, a body that is no event) gets a 400
``{"error": <reason>}`` and changes nothing; an oversized body a 413; a database or Stripe outage while
applying a 503 with nothing committed."""

from __future__ import annotations

import logging

from aiohttp import web
from billing_runtime.outages import is_database_outage, is_lock_conflict

from providers_svc.adapters.base import ProviderError
from providers_svc.adapters.stripe import NAME
from providers_svc.keys import metrics_key, stripe_webhooks_key
from providers_svc.services.stripe_webhooks import StripeWebhookRejected

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "Stripe-Signature"
# Stripe's events are a few KiB; an invoice with many lines some tens. Anything past this is no event.
MAX_BODY_BYTES = 512 * 1024


def _answer(status: int, error: str | None = None, **headers: str) -> web.Response:
    body: dict[str, object] = {"received": True} if error is None else {"error": error}
    return web.json_response(body, status=status, headers=headers or None)


async def _body(request: web.Request) -> bytes | None:
    """The raw body (the signature covers its exact bytes), or None past the limit."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        return None
    raw = bytearray()
    while chunk := await request.content.read(64 * 1024):
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            return None
    return bytes(raw)


async def stripe_webhook(request: web.Request) -> web.Response:
    metrics = request.app[metrics_key]
    raw = await _body(request)
    if raw is None:
        metrics.callbacks_rejected.labels(NAME, "too_large").inc()
        return _answer(413, "payload_too_large")
    try:
        done = await request.app[stripe_webhooks_key].handle(raw, request.headers.get(SIGNATURE_HEADER))
    except StripeWebhookRejected as exc:
        log.warning("stripe webhook rejected: %s", exc.reason)
        metrics.callbacks_rejected.labels(NAME, exc.reason).inc()
        return _answer(400, exc.reason)
    except ProviderError as exc:
        # Stripe could not be asked (a re-fetch, a capture): nothing was committed; Stripe sends it again.
        log.warning("stripe webhook not processed yet: %s", type(exc).__name__)
        return _answer(503, "temporarily_unavailable", **{"Retry-After": "5"})
    except Exception as exc:
        # An outage, or PostgreSQL breaking a lock cycle with another payment's webhook: nothing was
        # committed, and Stripe sends the event again.
        if not (is_database_outage(exc) or is_lock_conflict(exc)):
            raise
        log.warning("stripe webhook not processed: %s", type(exc).__name__)
        return _answer(503, "temporarily_unavailable", **{"Retry-After": "5"})
    metrics.callbacks_received.labels(NAME, done.result).inc()
    if done.anomaly is not None:
        metrics.anomalies.labels(NAME, done.anomaly).inc()
    return _answer(200)
