"""Handler of ``GET /v1/events``: the tenant's event log, oldest first (see services/event_log.py)."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from billing_runtime.errors import ProblemError
from billing_runtime.internal_auth import require_tenant
from billing_runtime.validation import query_int, query_text

from payments_svc.db.event_log import EventRepository
from payments_svc.db.models import TenantEvent
from payments_svc.domain.errors import NotFound
from payments_svc.keys import lifecycle_deps_key
from payments_svc.services.event_log import place_committed_events

EVENT_ID = re.compile(r"^evt_[A-Za-z0-9_\-]{1,60}$")
PAYMENT_ID = re.compile(r"^pay_[A-Za-z0-9_\-]{1,60}$")


def event_json(event: TenantEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "object": "event",
        "type": event.type,
        "livemode": event.livemode,
        "created_at": event.created_at.isoformat().replace("+00:00", "Z"),
        "data": event.data,
    }


async def events(request: web.Request) -> web.Response:
    tenant_id = require_tenant(request)
    deps = request.app[lifecycle_deps_key]
    q = request.query
    limit = query_int(q.get("limit"), "limit", default=20, lo=1, hi=100)
    type_ = query_text(q.get("type"), "type", max_length=64)
    after = q.get("after")
    payment_id = q.get("payment_id")
    if payment_id is not None and not PAYMENT_ID.fullmatch(payment_id):
        raise ProblemError(422, "validation_error", "payment_id must be a payment id")
    if after is not None and not EVENT_ID.fullmatch(after):
        raise ProblemError(422, "validation_error", "after must be an event id")
    # Place what committed before this request, so the client finds its own writes (one short pass).
    await place_committed_events(deps.uow)
    async with deps.uow() as uow:
        repo = EventRepository(uow.session, tenant_id)
        position = 0
        if after is not None:
            found = await repo.position_of(after)
            if found is None:
                raise NotFound("event")
            position = found
        rows = await repo.list_after(position, limit=limit + 1, type_=type_, payment_id=payment_id)
    return web.json_response(
        {
            "object": "list",
            "data": [event_json(e) for e in rows[:limit]],
            "limit": limit,
            "has_more": len(rows) > limit,
        }
    )
