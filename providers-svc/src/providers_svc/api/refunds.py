"""Internal refund routes (docs/INTERNAL.md "Refunds (issue 13)" and "Reconciliation (issue 13)"):
payments-svc's preflight check, and the reconciliation janitor's sync of one refund."""

from __future__ import annotations

from aiohttp import web
from billing_runtime.internal_auth import caller_key, require_platform_caller, require_tenant
from billing_runtime.problems import ProblemError, read_json_object

from providers_svc.adapters.base import ProviderUnavailableError
from providers_svc.api.schemas import RefundCheckRequest, parse
from providers_svc.domain.refunds import RefundStatus
from providers_svc.keys import refunds_key, uow_factory_key
from providers_svc.services.refund_checks import check_refund

_RETRY_AFTER = {"Retry-After": "5"}


def _only_from(request: web.Request, service: str) -> None:
    if request[caller_key].service != service:
        raise ProblemError(403, "forbidden", f"Only {service} may call this route")


async def check(request: web.Request) -> web.Response:
    _only_from(request, "payments")
    tenant_id = require_tenant(request)
    body = parse(RefundCheckRequest, await read_json_object(request))
    await check_refund(
        request.app[uow_factory_key],
        tenant_id,
        payment_id=body.payment_id,
        provider=body.provider,
        amount=body.amount,
        payment_amount=body.payment_amount,
        currency=body.currency,
        amount_refunded=body.amount_refunded,
        paid_at=body.paid_at,
    )
    return web.json_response({"refundable": True})


async def sync(request: web.Request) -> web.Response:
    """A ``requested`` refund is sent again, a ``pending`` one is asked its status, a verdict not yet
    published is published (``observed_via: "status_check"``)."""
    require_platform_caller(request, "reconciliation")
    refunds = request.app[refunds_key]
    refund_id = request.match_info["refund_id"]
    async with request.app[uow_factory_key]() as uow:
        refund = await uow.refunds.get(refund_id[:64])
    if refund is None:
        raise ProblemError(404, "refund_not_found", f"No refund {refund_id} was asked of a provider")
    published = await refunds.publish_unpublished(refund)
    if not published and not refund.status.is_final:
        try:
            after = (
                await refunds.send(refund.id, observed_via="status_check")
                if refund.status is RefundStatus.REQUESTED
                else await refunds.check(refund)
            )
        except ProviderUnavailableError:
            after = None
        if after is None or after.status is RefundStatus.REQUESTED:
            raise ProblemError(
                503, "provider_unavailable", "The provider could not be asked about the refund", headers=_RETRY_AFTER
            )
        published = after.status is not refund.status
        refund = after
    status = "pending" if refund.status is RefundStatus.REQUESTED else refund.status.value
    return web.json_response({"refund_id": refund.id, "status": status, "published": published})
