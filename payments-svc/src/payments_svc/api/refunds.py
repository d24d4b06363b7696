"""Handlers of refunds: ``POST``/``GET /v1/payments/{id}/refunds`` and ``GET /v1/refunds/{id}``."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from billing_runtime.errors import ProblemError
from billing_runtime.internal_auth import require_tenant
from billing_runtime.paging import MAX_OFFSET
from billing_runtime.problems import read_json_object
from billing_runtime.validation import parse, query_int

from payments_svc.api.common import idempotency_key, list_cursor, path_id, stored_json, unknown_cursor
from payments_svc.db.refunds import RefundRepository
from payments_svc.db.repositories import PaymentRepository
from payments_svc.domain.commands import RefundCreate
from payments_svc.domain.errors import NotFound
from payments_svc.events.mapping import refund_json
from payments_svc.keys import lifecycle_deps_key
from payments_svc.services.idempotency import IdempotentRequest, run_idempotent
from payments_svc.services.refunds import create_refund
from payments_svc.services.uow import PaymentsUnitOfWork


async def create(request: web.Request) -> web.Response:
    tenant_id = require_tenant(request)
    payment_id = path_id(request, "payment_id")
    key = idempotency_key(request)
    body = await read_json_object(request)
    cmd = parse(RefundCreate, body)
    deps = request.app[lifecycle_deps_key]

    accepted: list[str] = []

    async def work(uow: PaymentsUnitOfWork) -> tuple[int, dict[str, object]]:
        refund = await create_refund(deps, uow, tenant_id, payment_id, cmd)
        accepted.append(refund.provider)
        return 201, refund_json(refund)

    req = IdempotentRequest(tenant_id, request.method, request.path, key, body)
    # The refund asks providers-svc first (a call out of this service): the key is claimed before it
    # (IDEM-1), so a retry replays the answer without asking again.
    stored = await run_idempotent(deps.uow, req, work)
    # Counted once the refund committed (``run_idempotent`` returns only then), never for a replay.
    for provider in accepted:
        deps.metrics.refunds.labels(provider, "created").inc()
    return stored_json(stored.status, stored.body, replayed=stored.replayed)


async def get(request: web.Request) -> web.Response:
    tenant_id = require_tenant(request)
    refund_id = path_id(request, "refund_id", "refund")
    deps = request.app[lifecycle_deps_key]
    async with deps.uow() as uow:
        refund = await RefundRepository(uow.session, tenant_id).get(refund_id)
    if refund is None:
        raise NotFound("refund")
    return web.json_response(refund_json(refund))


async def list_(request: web.Request) -> web.Response:
    """The payment's refunds, newest first, paged as ``GET /v1/payments`` is."""
    tenant_id = require_tenant(request)
    payment_id = path_id(request, "payment_id")
    deps = request.app[lifecycle_deps_key]
    q = request.query
    limit = query_int(q.get("limit"), "limit", default=20, lo=1, hi=100)
    offset = query_int(q.get("offset"), "offset", default=0, lo=0, hi=MAX_OFFSET)
    after = list_cursor(q.get("starting_after"), "starting_after", "refund")
    before = list_cursor(q.get("ending_before"), "ending_before", "refund")
    if after is not None and before is not None:
        raise ProblemError(422, "validation_error", "starting_after and ending_before cannot be combined")
    if (after is not None or before is not None) and offset:
        raise ProblemError(422, "validation_error", "offset cannot be combined with a cursor")
    async with deps.uow() as uow:
        if await PaymentRepository(uow.session, tenant_id).get(payment_id) is None:
            raise NotFound()
        repo = RefundRepository(uow.session, tenant_id)
        starting_after = await _cursor(repo, payment_id, after, "starting_after")
        ending_before = await _cursor(repo, payment_id, before, "ending_before")
        rows = await repo.list_for_payment(
            payment_id, limit=limit + 1, offset=offset, starting_after=starting_after, ending_before=ending_before
        )
    # ending_before reads towards newer refunds: the extra row is then the first one, not the last.
    page = rows[-limit:] if ending_before is not None else rows[:limit]
    return web.json_response(
        {
            "object": "list",
            "data": [refund_json(r) for r in page],
            "limit": limit,
            "offset": offset,
            "has_more": len(rows) > limit,
        }
    )


async def _cursor(
    repo: RefundRepository, payment_id: str, refund_id: str | None, name: str
) -> tuple[datetime, str] | None:
    if refund_id is None:
        return None
    position = await repo.cursor_of(payment_id, refund_id)
    if position is None:
        raise unknown_cursor(name)
    return position
