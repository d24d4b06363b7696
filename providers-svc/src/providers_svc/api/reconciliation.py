"""The routes reconciliation-svc calls (docs/INTERNAL.md "Reconciliation"): platform calls naming no
tenant, from ``iss=reconciliation`` only (and ``app.py`` confines its tokens to these routes)."""

from __future__ import annotations

import re

from aiohttp import web
from billing_runtime.internal_auth import require_platform_caller
from billing_runtime.problems import ProblemError

from providers_svc.keys import metrics_key, payment_sync_key

RECONCILIATION = "reconciliation"
SYNC_PAYMENT = "/internal/payments/{payment_id}/sync"
STATEMENTS = "/internal/statements"
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
