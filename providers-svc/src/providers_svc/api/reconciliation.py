"""The routes reconciliation-svc calls (docs/INTERNAL.md "Reconciliation"): platform calls naming no
tenant, from ``iss=reconciliation`` only (and ``app.py`` confines its tokens to these routes)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from aiohttp import web
from billing_contracts.problems import FieldError
from billing_runtime.internal_auth import require_platform_caller
from billing_runtime.problems import ProblemError

from providers_svc.adapters.base import ProviderRejectedError, ProviderUnavailableError
from providers_svc.keys import metrics_key, payment_sync_key, statements_key, uow_factory_key
from providers_svc.services.statements.period import Period
from providers_svc.services.verdicts import BadCursor, Cursor, verdict_page

log = logging.getLogger(__name__)
_RETRY_AFTER = {"Retry-After": "5"}

RECONCILIATION = "reconciliation"
SYNC_PAYMENT = "/internal/payments/{payment_id}/sync"
STATEMENTS = "/internal/statements"
VERDICTS = "/internal/verdicts"
# Built by api/refunds.py; listed here with the other routes reconciliation-svc may reach.
SYNC_REFUND = "/internal/refunds/{refund_id}/sync"
# Payment ids are payments-svc's (``pay_…``, String(64) here): anything else names no transaction.
_PAYMENT_ID = re.compile(r"pay_[A-Za-z0-9_\-]{1,60}")


async def sync_payment(request: web.Request) -> web.Response:
    require_platform_caller(request, RECONCILIATION)
    payment_id = request.match_info["payment_id"]
    if not _PAYMENT_ID.fullmatch(payment_id):
        raise ProblemError(404, "transaction_not_found", "No provider transaction for this payment")
    synced = await request.app[payment_sync_key].sync(payment_id)
    request.app[metrics_key].syncs.labels(synced.provider, synced.result).inc()
    return web.json_response(
        {
            "payment_id": synced.payment_id,
            "provider": synced.provider,
            "status": synced.status,
            "published": synced.published,
        }
    )


# A statement covers at most this long a period (reconciliation asks day by day; a month is generous).
MAX_PERIOD = timedelta(days=31)
_ACCOUNT_ID = re.compile(r"sandbox|pac_[A-Za-z0-9_\-]{1,60}")


def _period(query: Mapping[str, str]) -> tuple[str, Period]:
    errors: list[FieldError] = []
    account_id = query.get("account_id", "")
    if not _ACCOUNT_ID.fullmatch(account_id):
        errors.append(FieldError(field="account_id", message="must be a provider account id or sandbox"))
    bounds: dict[str, datetime] = {}
    for name in ("from", "to"):
        try:
            moment = datetime.fromisoformat(query.get(name, ""))
        except ValueError:
            errors.append(FieldError(field=name, message="must be an RFC 3339 time"))
            continue
        if moment.tzinfo is None:
            errors.append(FieldError(field=name, message="must carry its offset (Z for UTC)"))
            continue
        bounds[name] = moment.astimezone(UTC)
    if len(bounds) == 2 and not timedelta(0) < bounds["to"] - bounds["from"] <= MAX_PERIOD:
        errors.append(FieldError(field="to", message="must be after from, by at most 31 days"))
    if errors:
        raise ProblemError(422, "validation_error", "Invalid statement request", errors=errors)
    return account_id, Period(bounds["from"], bounds["to"])


async def statements(request: web.Request) -> web.StreamResponse:
    """NDJSON: one ``StatementRecord`` per line, then ``{"complete": true}``. A provider that fails
    before the first line is a 503 problem; one that fails later ends the stream without its final
    line, so nothing partial is ever taken for complete."""
    require_platform_caller(request, RECONCILIATION)
    account_id, period = _period(request.query)
    statement = await request.app[statements_key].open(account_id, period)
    metrics = request.app[metrics_key]
    started = time.monotonic()
    records = aiter(statement.records)
    try:
        first = await anext(records, None)
    except (ProviderUnavailableError, ProviderRejectedError) as exc:
        metrics.statement_seconds.labels(statement.provider, "unavailable").observe(time.monotonic() - started)
        log.warning("statement of %s: the provider failed: %s", account_id, exc)
        raise ProblemError(503, "provider_unavailable", "The provider is unavailable", headers=_RETRY_AFTER) from None
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson", "Cache-Control": "no-store"})
    await response.prepare(request)
    lines = 0
    try:
        record = first
        while record is not None:
            await response.write(record.model_dump_json().encode() + b"\n")
            lines += 1
            record = await anext(records, None)
    except (ProviderUnavailableError, ProviderRejectedError) as exc:
        metrics.statement_lines.labels(statement.provider).inc(lines)
        metrics.statement_seconds.labels(statement.provider, "broken").observe(time.monotonic() - started)
        log.warning("statement of %s broke after %d lines: %s", account_id, lines, exc)
        # Ending without the final line is the signal: the stream is incomplete.
        return response
    except Exception:
        # A bug, after the answer began: no 500 can follow a 200 already sent, and a stream left open
        # would keep the run waiting for its read timeout. Ended without its final line, it is
        # incomplete at once for the reader.
        metrics.statement_seconds.labels(statement.provider, "broken").observe(time.monotonic() - started)
        log.exception("statement of %s failed after %d lines", account_id, lines)
        return response
    await response.write(b'{"complete": true}\n')
    await response.write_eof()
    metrics.statement_lines.labels(statement.provider).inc(lines)
    metrics.statement_seconds.labels(statement.provider, "complete").observe(time.monotonic() - started)
    return response


# Verdicts per page: the default, and the most one page may ask for.
VERDICTS_PAGE = 100
MAX_VERDICTS_PAGE = 1000


def _verdicts_query(query: Mapping[str, str]) -> tuple[Cursor | None, int]:
    errors: list[FieldError] = []
    limit = VERDICTS_PAGE
    raw_limit = query.get("limit")
    if raw_limit is not None:
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_VERDICTS_PAGE:
            errors.append(FieldError(field="limit", message=f"must be an integer from 1 to {MAX_VERDICTS_PAGE}"))
        else:
            limit = int(raw_limit)
    after = None
    if "after" in query:
        try:
            after = Cursor.decode(query["after"])
        except BadCursor:
            errors.append(FieldError(field="after", message="must be a `next` this route handed out"))
    if errors:
        raise ProblemError(422, "validation_error", "Invalid verdicts request", errors=errors)
    return after, limit


async def verdicts(request: web.Request) -> web.Response:
    """A page of the verdicts we hold, each as the contract event that published it, for
    ``reconciliation-svc rebuild`` (services/verdicts.py): ``{"data": [...], "next": cursor | null}``."""
    require_platform_caller(request, RECONCILIATION)
    after, limit = _verdicts_query(request.query)
    page = await verdict_page(request.app[uow_factory_key], after, limit)
    body = b'{"data":[' + b",".join(e.model_dump_json().encode() for e in page.events) + b'],"next":'
    body += (f'"{page.next.encode()}"' if page.next is not None else "null").encode() + b"}"
    return web.Response(body=body, content_type="application/json", headers={"Cache-Control": "no-store"})
