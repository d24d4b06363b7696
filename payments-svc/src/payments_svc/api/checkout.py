"""Handlers of ``/v1/checkout/{token}``: authenticated by the checkout token alone."""

from __future__ import annotations

import re

from aiohttp import web
from billing_runtime.problems import read_json_object
from billing_runtime.validation import parse

from payments_svc.domain.commands import CheckoutPay
from payments_svc.domain.errors import NotFound
from payments_svc.keys import checkout_deps_key
from payments_svc.services.checkout import checkout_view, pay

_TOKEN = re.compile(r"^[A-Za-z0-9_\-]{16,128}$")


def _token(request: web.Request) -> str:
    token = request.match_info["token"]
    if not _TOKEN.fullmatch(token):
        raise NotFound("checkout")
    return token


# The payment's tenant, for the gateway alone: it adds that tenant's allowed origins to the view and
# drops the header (the public view names no tenant). docs/INTERNAL.md "Checkout view".
CHECKOUT_TENANT_HEADER = "X-Checkout-Tenant"


async def view(request: web.Request) -> web.Response:
    tenant_id, body = await checkout_view(request.app[checkout_deps_key], _token(request))
    return web.json_response(body, headers={CHECKOUT_TENANT_HEADER: tenant_id})


async def pay_(request: web.Request) -> web.Response:
    token = _token(request)
    cmd = parse(CheckoutPay, await read_json_object(request))
    redirect_url = await pay(request.app[checkout_deps_key], token, cmd.provider)
    return web.json_response({"redirect_url": redirect_url})
