"""Handlers of ``/v1/payments``: parse, call a use case, serialize."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from billing_runtime.errors import ProblemError
from billing_runtime.internal_auth import caller_key, require_tenant
from billing_runtime.paging import MAX_OFFSET
from billing_runtime.problems import read_json_object
from billing_runtime.validation import parse, query_int, query_text

from payments_svc.api.common import (
    idempotency_key,
    list_cursor,
    path_id,
    stored_json,
    unknown_cursor,
)
from payments_svc.db.models import Payment
from payments_svc.db.repositories import PaymentRepository
from payments_svc.domain.commands import CaptureCreate, PaymentCreate
from payments_svc.domain.errors import NotFound
from payments_svc.domain.payment import PaymentStatus
from payments_svc.events.mapping import payment_json
from payments_svc.keys import checkout_deps_key, lifecycle_deps_key
from payments_svc.services.captures import capture_payment
from payments_svc.services.checkout import CheckoutDeps, offered
from payments_svc.services.idempotency import IdempotentRequest, run_idempotent
from payments_svc.services.lifecycle import cancel_payment
from payments_svc.services.payments import (
    Creator,
    capture_method_unsupported,
    create_payment,
    validate_amount,
    validate_capture_method,
)
from payments_svc.services.uow import PaymentsUnitOfWork


def _payment_id(request: web.Request) -> str:
    return path_id(request, "payment_id")


async def create(request: web.Request) -> web.Response:
    tenant_id = require_tenant(request)
    key = idempotency_key(request)
    body = await read_json_object(request)
    cmd = parse(PaymentCreate, body)
    deps = request.app[lifecycle_deps_key]
    caller = request[caller_key]
    # The tenant's mode travels in the gateway's token; the payment keeps it for life.
    creator = Creator(tenant_id, caller.tenant_name, caller.livemode)
    if cmd.capture_method == "manual":
        await _ensure_manual_capture_offered(request.app[checkout_deps_key], creator, cmd)

    async def work(uow: PaymentsUnitOfWork) -> tuple[int, dict[str, object]]:
        payment = await create_payment(uow, creator, cmd, deps.checkout_base_url)
        return 201, payment_json(payment, deps.checkout_base_url)

    req = IdempotentRequest(tenant_id, request.method, request.path, key, body)
    # Creating a payment only writes this service's rows, so the key is claimed in the same statement.
    stored = await run_idempotent(deps.uow, req, work, local_effect=True)
    return stored_json(stored.status, stored.body, replayed=stored.replayed)


async def _ensure_manual_capture_offered(deps: CheckoutDeps, creator: Creator, cmd: PaymentCreate) -> None:
    """A manual payment must be payable by some provider that can hold funds (read-only, asked of
    providers-svc before anything is written; the checkout asks again when the payer comes)."""
    validate_amount(cmd)
    validate_capture_method(cmd)
    probe = Payment(
        tenant_id=creator.tenant_id,
        currency=cmd.currency,
        livemode=creator.livemode,
        capture_method=cmd.capture_method,
        allowed_providers=list(cmd.providers) if cmd.providers else None,
    )
    if not await offered(deps, probe):
        raise capture_method_unsupported(
            f"capture_method manual: no provider of this tenant that can capture manually takes {cmd.currency}."
        )


async def capture(request: web.Request) -> web.Response:
    """``POST /v1/payments/{id}/capture`` (``Idempotency-Key`` required): capture an AUTHORIZED payment."""
    tenant_id = require_tenant(request)
    payment_id = _payment_id(request)
    key = idempotency_key(request)
    # No body captures everything, as Stripe's capture does; a body must be a JSON object.
    body = await read_json_object(request) if request.can_read_body else {}
    cmd = parse(CaptureCreate, body)
    deps = request.app[lifecycle_deps_key]
    moved: list[Payment] = []

    async def work(uow: PaymentsUnitOfWork) -> tuple[int, dict[str, object]]:
        payment, by_us = await capture_payment(deps, uow, tenant_id, payment_id, cmd)
        if by_us:
            moved.append(payment)
        return 200, payment_json(payment, deps.checkout_base_url)

    req = IdempotentRequest(tenant_id, request.method, request.path, key, body)
    # The capture calls providers-svc (a call out of this service): the key is claimed before it
    # (IDEM-1), so a retry replays the answer without capturing again.
    stored = await run_idempotent(deps.uow, req, work)
    for payment in moved:  # counted once the capture committed, never for a replay
        deps.metrics.payment_final(payment, PaymentStatus.SUCCEEDED)
    return stored_json(stored.status, stored.body, replayed=stored.replayed)


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
        list_cursor(q.get("starting_after"), "starting_after"),
        list_cursor(q.get("ending_before"), "ending_before"),
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


async def _cursor_position(repo: PaymentRepository, payment_id: str | None, name: str) -> tuple[datetime, str] | None:
    if payment_id is None:
        return None
    position = await repo.cursor_of(payment_id)
    if position is None:
        raise unknown_cursor(name)
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
