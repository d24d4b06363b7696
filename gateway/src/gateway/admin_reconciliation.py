"""The admin API of reconciliation (``/admin/reconciliation/*``: discrepancies, the janitor), served by
reconciliation-svc; the gateway checks the admin token and forwards with an internal token naming no
tenant (a platform call), as for ``/admin/provider-accounts``.

reconciliation-svc is not among the gateway's readiness checks: it is a back-office service, and its
being down must not take the public API out of a load balancer. Its routes answer 503 meanwhile."""

from __future__ import annotations

from aiohttp import web
from billing_runtime.errors import ProblemError

from gateway.admin import admin_only
from gateway.keys import settings_key
from gateway.proxy import relay
from gateway.upstreams import RECONCILIATION


async def reconciliation(request: web.Request) -> web.Response:
    if request.app[settings_key].reconciliation_internal_secret is None:
        raise ProblemError(
            503,
            "reconciliation_not_configured",
            "Reconciliation is not configured on this gateway (GATEWAY_RECONCILIATION_INTERNAL_SECRET).",
            headers={"Retry-After": "60"},
        )
    # A settlement file is larger than any JSON body: streamed through under a limit of its own.
    upload = request.method == "POST" and request.match_info["tail"] == "statements"
    limit = request.app[settings_key].statement_upload_limit if upload else None
    return await relay(request, RECONCILIATION, None, internal=True, stream_limit=limit)


def add_reconciliation_routes(app: web.Application) -> None:
    app.router.add_route("*", r"/admin/reconciliation/{tail:.+}", admin_only(reconciliation))
