"""``/admin``: the platform operator's API for tenants, behind the admin bearer token."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web
from billing_contracts.envelope import utcnow
from billing_runtime.paging import list_paging
from billing_runtime.problems import ProblemError, read_json_object

from gateway.auth import bearer_token
from gateway.db.uow import UnitOfWork
from gateway.keys import access_cache_key, secret_hasher_key, sessionmaker_key, settings_key, token_codec_key
from gateway.responses import TenantWithSecret as SecretShown
from gateway.schemas import TenantCreate, TenantUpdate, parse, tenant_json, tenant_model
from gateway.tenants import (
    TenantWithSecret,
    create_tenant,
    get_tenant,
    list_tenants,
    rotate_secret,
    update_tenant,
)

# Responses that carry a secret must not be kept by any cache on the way.
_NO_STORE = {"Cache-Control": "no-store"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _admin_required() -> ProblemError:
    return ProblemError(401, "unauthorized", "A valid admin token is required", headers={"WWW-Authenticate": "Bearer"})


def _is_admin(request: web.Request, token: str | None) -> bool:
    admin_token = request.app[settings_key].admin_token
    if token is None or admin_token is None:
        return False
    # Digests first, so the comparison does not even reveal the token's length.
    given = hashlib.sha256(token.encode()).digest()
    return hmac.compare_digest(given, hashlib.sha256(admin_token.get_secret_value().encode()).digest())


def require_ops_access(request: web.Request) -> None:
    """``/readyz`` and ``/metrics`` on the public listener: the admin token only (401 otherwise).
    Monitoring that should not hold the admin token scrapes the ops listener instead."""
    try:
        token = bearer_token(request)
    except ProblemError:
        token = None
    if not _is_admin(request, token):
        raise _admin_required()


def require_admin(request: web.Request) -> None:
    """401 without a valid admin token; 403 for a valid tenant token (authenticated, not allowed)."""
    token = bearer_token(request)
    if _is_admin(request, token):
        return
    if token is not None:
        try:
            request.app[token_codec_key].verify(token)
        except ProblemError:
            pass
        else:
            raise ProblemError(403, "forbidden", "Tenant tokens cannot use the admin API")
    raise _admin_required()


def admin_only(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        require_admin(request)
        return await handler(request)

    return wrapped


def unit_of_work(request: web.Request) -> UnitOfWork:
    return UnitOfWork(request.app[sessionmaker_key])


def _with_secret(issued: TenantWithSecret) -> dict[str, object]:
    tenant = tenant_model(issued.tenant).model_dump()
    return SecretShown(**tenant, secret=issued.secret).model_dump(mode="json")


async def create(request: web.Request) -> web.Response:
    cmd = parse(TenantCreate, await read_json_object(request))
    issued = await create_tenant(unit_of_work(request), request.app[secret_hasher_key], cmd, utcnow())
    return web.json_response(_with_secret(issued), status=201, headers=_NO_STORE)


async def list_(request: web.Request) -> web.Response:
    paging = list_paging(request.query, what="tenant")
    tenants, has_more = await list_tenants(unit_of_work(request), paging)
    return web.json_response(
        {
            "object": "list",
            "data": [tenant_json(t) for t in tenants],
            "limit": paging.limit,
            "offset": paging.offset,
            "has_more": has_more,
        }
    )


async def retrieve(request: web.Request) -> web.Response:
    tenant = await get_tenant(unit_of_work(request), request.match_info["tenant_id"])
    return web.json_response(tenant_json(tenant))


async def update(request: web.Request) -> web.Response:
    cmd = parse(TenantUpdate, await read_json_object(request))
    tenant = await update_tenant(unit_of_work(request), request.match_info["tenant_id"], cmd, utcnow())
    request.app[access_cache_key].invalidate()  # here at once; other replicas on the announcement
    return web.json_response(tenant_json(tenant))


async def rotate(request: web.Request) -> web.Response:
    issued = await rotate_secret(
        unit_of_work(request),
        request.app[secret_hasher_key],
        request.match_info["tenant_id"],
        grace=request.app[settings_key].secret_grace_period,
        now=utcnow(),
    )
    request.app[access_cache_key].invalidate()  # here at once; other replicas on the announcement
    return web.json_response(_with_secret(issued), headers=_NO_STORE)


def add_admin_routes(app: web.Application) -> None:
    app.router.add_post("/admin/tenants", admin_only(create))
    app.router.add_get("/admin/tenants", admin_only(list_))
    app.router.add_get("/admin/tenants/{tenant_id}", admin_only(retrieve))
    app.router.add_patch("/admin/tenants/{tenant_id}", admin_only(update))
    app.router.add_post("/admin/tenants/{tenant_id}/rotate-secret", admin_only(rotate))
