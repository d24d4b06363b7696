"""``GET /v1/payments/{id}/attempts``: the payment's attempts, oldest first."""

from __future__ import annotations

from aiohttp import web
from billing_runtime.internal_auth import require_tenant

from payments_svc.api.common import path_id
from payments_svc.api.responses import AttemptList
from payments_svc.db.attempts import attempts_of
from payments_svc.db.repositories import PaymentRepository
from payments_svc.domain.errors import NotFound
from payments_svc.events.mapping import attempt_snapshot
from payments_svc.keys import lifecycle_deps_key


async def list_(request: web.Request) -> web.Response:
    tenant_id = require_tenant(request)
    payment_id = path_id(request, "payment_id")
    async with request.app[lifecycle_deps_key].uow() as uow:
        # Another tenant's payment is as unknown as a payment that does not exist.
        if await PaymentRepository(uow.session, tenant_id).get(payment_id) is None:
            raise NotFound()
        attempts = await attempts_of(uow.session, tenant_id, payment_id)
    # A payment has a handful of attempts (one per provider at most): the whole list, one page.
    body = AttemptList(data=[attempt_snapshot(a) for a in attempts], has_more=False)
    return web.json_response(body.model_dump(mode="json"))
