"""``GET /v1/providers`` (an extension beyond API.md): the providers the tenant's payments may be paid
through, in its mode, as the checkout offers them (``ProviderDirectory.offers``), with no credentials."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from billing_runtime.internal_auth import caller_key, require_tenant

from providers_svc.keys import directory_key
from providers_svc.services.directory import Offer


def _source(offer: Offer) -> str:
    if offer.account is None:
        return "sandbox"
    return "simulator" if offer.account.simulator else "account"


def provider_json(offer: Offer) -> dict[str, Any]:
    return {
        "object": "provider",
        "name": offer.name,
        "display_name": offer.display_name,
        "environment": "production" if offer.livemode else "test",
        "livemode": offer.livemode,
        "source": _source(offer),
        "currencies": sorted(offer.currencies),
    }


async def list_tenant_providers(request: web.Request) -> web.Response:
    tenant_id = require_tenant(request)
    offers = await request.app[directory_key].offers(tenant_id, None, livemode=request[caller_key].livemode)
    body = {"object": "list", "data": [provider_json(o) for o in offers], "has_more": False}
    return web.json_response(body)


def add_tenant_provider_routes(app: web.Application) -> None:
    app.router.add_get("/v1/providers", list_tenant_providers)
