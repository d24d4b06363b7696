"""Handlers of ``/v1/payments``: parse, call a use case, serialize."""

from __future__ import annotations

import re
from datetime import datetime

from aiohttp import web
from billing_contracts.problems import FieldError
from billing_runtime.errors import ProblemError
from billing_runtime.internal_auth import caller_key, require_tenant
from billing_runtime.problems import read_json_object
from billing_runtime.validation import parse, query_int, query_text

from payments_svc.db.repositories import PaymentRepository
from payments_svc.domain.commands import PaymentCreate
from payments_svc.domain.errors import NotFound
from payments_svc.domain.payment import PaymentStatus
from payments_svc.events.mapping import payment_json
from payments_svc.keys import lifecycle_deps_key
from payments_svc.services.idempotency import IdempotentRequest, run_idempotent
from payments_svc.services.lifecycle import cancel_payment
from payments_svc.services.payments import Creator, create_payment
from payments_svc.services.uow import PaymentsUnitOfWork

_IDEMPOTENCY_KEY = re.compile(r"^[\x20-\x7e]{1,255}$")
_ID = re.compile(r"^[a-z]{2,8}_[0-9a-z]{1,40}$")


def _idempotency_key(request: web.Request) -> str:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        raise ProblemError(400, "idempotency_key_missing", "The Idempotency-Key header is required.")
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise ProblemError(400, "idempotency_key_invalid", "Idempotency-Key must be 1-255 printable ASCII characters.")
    return key


def _json(status: int, text: str, *, replayed: bool = False) -> web.Response:
    response = web.Response(status=status, text=text, content_type="application/json")
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _payment_id(request: web.Request) -> str:
    payment_id = request.match_info["payment_id"]
    if not _ID.fullmatch(payment_id):
        raise NotFound()
    return payment_id


async def create(request: web.Request) -> web.Response:
    tenant_id = require_tenant(request)
    key = _idempotency_key(request)
    body = await read_json_object(request)
    cmd = parse(PaymentCreate, body)
    deps = request.app[lifecycle_deps_key]
    caller = request[caller_key]
    # The tenant's mode travels in the gateway's token; the payment keeps it for life.
    creator = Creator(tenant_id, caller.tenant_name, caller.livemode)

    async def work(uow: PaymentsUnitOfWork) -> tuple[int, dict[str, object]]:
        payment = await create_payment(uow, creator, cmd, deps.checkout_base_url)
        return 201, payment_json(payment, deps.checkout_base_url)

    req = IdempotentRequest(tenant_id, request.method, request.path, key, body)
    # Creating a payment only writes this service's rows, so the key is claimed in the same statement.
    stored = await run_idempotent(deps.uow, req, work, local_effect=True)
    return _json(stored.status, stored.body, replayed=stored.replayed)


async def get(request: web.Request) -> web.Response:
    tenant_id = require_tenant(request)
    deps = request.app[lifecycle_deps_key]
    async with deps.uow() as uow:
        payment = await PaymentRepository(uow.session, tenant_id).get(_payment_id(request))
    if payment is None:
        raise NotFound()
    return web.json_response(payment_json(payment, deps.checkout_base_url))


async def list_(request: web.Request) -> web.Response:
    tenant_id = require_tenant(request)
    deps = request.app[lifecycle_deps_key]
    q = request.query
    limit = query_int(q.get("limit"), "limit", default=20, lo=1, hi=100)
    # Capped: an offset is a scan of everything before it (cursors are not).
    offset = query_int(q.get("offset"), "offset", default=0, lo=0, hi=MAX_OFFSET)
    status = q.get("status")
    if status is not None and status not in PaymentStatus.__members__:
        raise ProblemError(422, "validation_error", f"status must be one of {', '.join(PaymentStatus)}")
    order_id = query_text(q.get("order_id"), "order_id", max_length=128)
    after, before = (
        _list_cursor(q.get("starting_after"), "starting_after"),
        _list_cursor(q.get("ending_before"), "ending_before"),
    )
    if after is not None and before is not None:
        raise ProblemError(422, "validation_error", "starting_after and ending_before cannot be combined")
    if (after is not None or before is not None) and offset:
        raise ProblemError(422, "validation_error", "offset cannot be combined with a cursor")
    async with deps.uow() as uow:
        repo = PaymentRepository(uow.session, tenant_id)
        starting_after = await _cursor_position(repo, after, "starting_after")
        ending_before = await _cursor_position(repo, before, "ending_before")
        rows = await repo.list(
            limit=limit + 1,
            offset=offset,
            status=status,
            order_id=order_id,
            starting_after=starting_after,
            ending_before=ending_before,
        )
    # ending_before reads towards newer payments: the extra row is then the first one, not the last.
    page = rows[-limit:] if ending_before is not None else rows[:limit]
    return web.json_response(
        {
            "object": "list",
            "data": [payment_json(p, deps.checkout_base_url) for p in page],
            "limit": limit,
            "offset": offset,
            "has_more": len(rows) > limit,
        }
    )


MAX_OFFSET = 10_000


def _list_cursor(raw: str | None, name: str) -> str | None:
    if raw is not None and not _ID.fullmatch(raw):
        raise ProblemError(
            422,
            "validation_error",
            f"{name} must be a payment id",
            errors=[FieldError(field=name, message="must be a payment id")],
        )
    return raw


async def _cursor_position(repo: PaymentRepository, payment_id: str | None, name: str) -> tuple[datetime, str] | None:
    if payment_id is None:
        return None
    position = await repo.cursor_of(payment_id)
    if position is None:
        # As the dispatcher's lists (and Stripe's): the field named, the same answer for an unknown id
        # and another tenant's payment, so nothing is revealed.
        raise ProblemError(
            422,
            "validation_error",
            f"{name}: no such object",
            errors=[FieldError(field=name, message="no such object")],
        )
    return position


async def cancel(request: web.Request) -> web.Response:
    tenant_id = require_tenant(request)
    deps = request.app[lifecycle_deps_key]
    payment = await cancel_payment(deps, tenant_id, _payment_id(request))
    return web.json_response(payment_json(payment, deps.checkout_base_url))


async def history(request: web.Request) -> web.Response:
    """``GET /v1/payments/{id}/history``: the append-only status history (an extension of API.md)."""
    tenant_id = require_tenant(request)
    deps = request.app[lifecycle_deps_key]
    payment_id = _payment_id(request)
    async with deps.uow() as uow:
        repo = PaymentRepository(uow.session, tenant_id)
        if await repo.get(payment_id) is None:
            raise NotFound()
        changes = await repo.history(payment_id)
    return web.json_response(
        {
            "object": "list",
            "data": [
                {
                    "from_status": c.from_status,
                    "to_status": c.to_status,
                    "actor": c.actor,
                    "reason": c.reason,
                    "event_id": c.event_id,
                    "created_at": c.created_at.isoformat().replace("+00:00", "Z"),
                }
                for c in changes
            ],
        }
    )
