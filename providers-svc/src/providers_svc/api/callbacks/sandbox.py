"""``POST /billing/sandbox``: the sandbox bank's callback. Answers in the sandbox's own JSON format
(``{"received": true}`` / ``{"error": ...}``), never problem+json."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from aiohttp import web
from billing_runtime.outages import is_database_outage
from pydantic import ValidationError

from providers_svc.adapters.sandbox import (
    FAILURE_MESSAGES,
    NAME,
    SIGNATURE_HEADER,
    InvalidSignatureError,
    SandboxCallback,
    verify,
)
from providers_svc.domain.transactions import CallbackResult, Verdict
from providers_svc.keys import metrics_key, settings_key, uow_factory_key
from providers_svc.services.callbacks import ProviderNotice, TransactionBusy, handle_notice

log = logging.getLogger(__name__)

_VERDICTS = {
    "payment.succeeded": Verdict.SUCCEEDED,
    "payment.failed": Verdict.FAILED,
    "payment.authorized": Verdict.AUTHORIZED,
}


def _answer(status: int, error: str | None = None, **headers: str) -> web.Response:
    body: dict[str, object] = {"received": True} if error is None else {"error": error}
    return web.json_response(body, status=status, headers=headers or None)


def _notice(event: SandboxCallback, payload: str) -> ProviderNotice:
    verdict = _VERDICTS.get(event.type)
    failure_code: str | None = None
    failure_message: str | None = None
    if verdict is Verdict.FAILED:
        failure_code = event.failure_code or "declined"
        failure_message = FAILURE_MESSAGES.get(failure_code, "The sandbox bank declined the payment.")
    return ProviderNotice(
        provider=NAME,
        external_id=event.id,
        event_type=event.type,
        transaction_id=event.transaction,
        verdict=verdict,
        amount=event.amount,
        currency=event.currency,
        payload=payload,
        failure_code=failure_code,
        failure_message=failure_message,
        test_only=True,
        authorization_expires_at=(
            datetime.fromtimestamp(event.authorization_expires_at, UTC)
            if event.authorization_expires_at is not None
            else None
        ),
    )


async def sandbox_callback(request: web.Request) -> web.Response:
    settings = request.app[settings_key]
    metrics = request.app[metrics_key]
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _answer(413, "payload_too_large")
    # PRV-1: the signature is checked before anything else reads the body.
    try:
        verify(
            settings.sandbox_secret.get_secret_value(),
            request.headers.get(SIGNATURE_HEADER),
            raw,
            tolerance=settings.sandbox_signature_tolerance,
        )
    except InvalidSignatureError as exc:
        log.warning("sandbox callback rejected: %s", exc)
        metrics.callbacks_rejected.labels(NAME, "bad_signature").inc()
        return _answer(400, "invalid_signature")
    try:
        payload = raw.decode()
        event = SandboxCallback.model_validate_json(payload)
    except (UnicodeDecodeError, ValidationError):
        metrics.callbacks_rejected.labels(NAME, "bad_payload").inc()
        return _answer(400, "invalid_payload")
    try:
        handled = await handle_notice(request.app[uow_factory_key], _notice(event, payload))
    except TransactionBusy:
        # Nothing was committed; the bank retries.
        log.warning("sandbox callback %s not processed: its transaction kept changing", event.id)
        return _answer(503, "temporarily_unavailable", **{"Retry-After": "1"})
    except Exception as exc:
        if not is_database_outage(exc):
            raise
        # Nothing was committed; the bank retries.
        log.warning("sandbox callback %s not processed: %s", event.id, exc)
        return _answer(503, "temporarily_unavailable", **{"Retry-After": "5"})
    result = handled.result
    metrics.callbacks_received.labels(NAME, result.value).inc()
    if handled.anomaly is not None:
        metrics.anomalies.labels(NAME, handled.anomaly).inc()
    if result is CallbackResult.UNKNOWN_TRANSACTION:
        return _answer(404, "unknown_transaction")
    if result is CallbackResult.AMOUNT_MISMATCH:
        return _answer(400, "amount_mismatch")
    if result is CallbackResult.LIVEMODE_REFUSED:
        # No signed sandbox word moves a live payment (API.md "Test mode and live mode").
        return _answer(400, "livemode_refused")
    return _answer(200)
