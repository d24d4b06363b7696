"""``GET /v1/checkout/{token}``: payments-svc's public view of a payment, plus the ``allowed_origins``
of the payment's tenant (which the gateway owns), so the hosted page can tell the browser which sites
may frame it. payments-svc names the tenant in a header meant for the gateway alone, dropped here."""

from __future__ import annotations

import json
import logging

from aiohttp import web
from billing_runtime.outages import is_database_outage

from gateway.keys import access_cache_key
from gateway.proxy import relay
from gateway.upstreams import PAYMENTS

log = logging.getLogger(__name__)

# payments-svc's header naming the payment's tenant (payments_svc.api.checkout).
CHECKOUT_TENANT_HEADER = "X-Checkout-Tenant"


async def checkout_view(request: web.Request) -> web.Response:
    response = await relay(request, PAYMENTS, None, internal=True, kept_headers=(CHECKOUT_TENANT_HEADER,))
    tenant_id = response.headers.popall(CHECKOUT_TENANT_HEADER, [None])[0]
    if request.method != "GET" or response.status != 200 or tenant_id is None:
        return response
    try:
        view = json.loads(response.body) if isinstance(response.body, bytes) else None
    except ValueError:
        view = None
    if not isinstance(view, dict):
        # Not the view the contract promises: passed on untouched, as every other upstream answer is.
        return response
    try:
        row = await request.app[access_cache_key].row(tenant_id)
    except Exception as exc:
        if not is_database_outage(exc):
            raise
        # The payer can still pay on the page itself: with no origins the page is not frameable, which
        # fails closed for the embedded modal alone.
        log.warning("checkout view with no allowed_origins: the gateway's database is unavailable")
        row = None
    origins = row["allowed_origins"] if row is not None else []
    assert isinstance(origins, list)
    view["allowed_origins"] = origins
    return web.json_response(view)


def add_checkout_view_route(app: web.Application) -> None:
    """Before the proxy's ``/v1/checkout/{tail}``, which serves every other checkout call."""
    app.router.add_route("*", "/v1/checkout/{token}", checkout_view)
