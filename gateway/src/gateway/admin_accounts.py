"""The admin API of provider accounts (API.md "Provider accounts"), served by providers-svc, which
holds the credentials; the gateway checks the admin token and, for a tenant's routes, that the tenant
exists and what its mode is (a test tenant takes only test accounts), and forwards with an internal
token that says so. The operator's reads of the Stripe projections (``/admin/stripe/...``, every
account and tenant) go to providers-svc the same way, with a token naming no tenant."""

from __future__ import annotations

from aiohttp import web

from gateway.admin import admin_only, unit_of_work
from gateway.proxy import relay
from gateway.tenant_access import TenantAccess
from gateway.tenants import get_tenant
from gateway.upstreams import PROVIDERS


async def accounts(request: web.Request) -> web.Response:
    return await relay(request, PROVIDERS, None, internal=True)


async def stripe_objects(request: web.Request) -> web.Response:
    return await relay(request, PROVIDERS, None, internal=True)


async def tenant_accounts(request: web.Request) -> web.Response:
    tenant = await get_tenant(unit_of_work(request), request.match_info["tenant_id"])  # 404 for an unknown tenant
    access = TenantAccess(tenant.id, tenant.display_name, tenant.livemode)
    return await relay(request, PROVIDERS, access, internal=True)


def add_account_routes(app: web.Application) -> None:
    app.router.add_route("*", "/admin/provider-accounts", admin_only(accounts))
    app.router.add_route("*", r"/admin/provider-accounts/{account_id:[^/]+}", admin_only(accounts))
    app.router.add_route("*", "/admin/tenants/{tenant_id}/provider-accounts", admin_only(tenant_accounts))
    app.router.add_route(
        "*", r"/admin/tenants/{tenant_id}/provider-accounts/{provider:[^/]+}", admin_only(tenant_accounts)
    )
    app.router.add_route("GET", r"/admin/stripe/{kind:[^/]+}", admin_only(stripe_objects))
    app.router.add_route("GET", r"/admin/stripe/{kind:[^/]+}/{stripe_id:[^/]+}", admin_only(stripe_objects))
