"""Handler of ``GET /internal/events``: every tenant's event log in one order, for reconciliation-svc's
``rebuild`` of its projection (docs/INTERNAL.md "Reconciliation"). Called by reconciliation-svc only,
acting for no tenant; each event names its tenant."""

from __future__ import annotations

from aiohttp import web
from billing_runtime.errors import ProblemError
from billing_runtime.internal_auth import require_platform_caller
from billing_runtime.validation import query_int

from payments_svc.api.events import EVENT_ID, event_json
from payments_svc.db.event_log import PlatformEventRepository
from payments_svc.domain.errors import NotFound
from payments_svc.keys import lifecycle_deps_key
from payments_svc.services.event_log import place_committed_events

RECONCILIATION = "reconciliation"
# A rebuild pages through every event ever logged: pages larger than a tenant's.
MAX_LIMIT = 1000


async def platform_events(request: web.Request) -> web.Response:
    require_platform_caller(request, RECONCILIATION)
    deps = request.app[lifecycle_deps_key]
    limit = query_int(request.query.get("limit"), "limit", default=100, lo=1, hi=MAX_LIMIT)
    after = request.query.get("after")
    if after is not None and not EVENT_ID.fullmatch(after):
        raise ProblemError(422, "validation_error", "after must be an event id")
    # As /v1/events: place what committed before this request, so a reader finds it.
    await place_committed_events(deps.uow)
    async with deps.uow() as uow:
        repo = PlatformEventRepository(uow.session)
        position = 0
        if after is not None:
            found = await repo.position_of(after)
            if found is None:
                raise NotFound("event")
            position = found
        rows = await repo.list_after(position, limit=limit + 1)
    return web.json_response(
        {
            "object": "list",
            "data": [{**event_json(e), "tenant_id": e.tenant_id} for e in rows[:limit]],
            "limit": limit,
            "has_more": len(rows) > limit,
        }
    )
