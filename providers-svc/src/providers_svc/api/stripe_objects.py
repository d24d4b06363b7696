"""``GET /v1/stripe/{kind}[/{id}]`` (a tenant's own Stripe objects, in its mode) and
``GET /admin/stripe/{kind}[/{id}]`` (the operator's: every account and tenant), served from the
projections. Only the gateway calls them: it names the tenant in the internal token, or, for the
admin routes, checked the admin token and names none."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from billing_contracts.problems import FieldError
from billing_runtime.internal_auth import caller_key, require_tenant
from billing_runtime.problems import ProblemError
from billing_runtime.validation import query_int

from providers_svc.api.schemas import rfc3339
from providers_svc.db.stripe_objects import ListFilter, Scope, StripeObjectRow
from providers_svc.domain.stripe_objects import KIND_OF_PATH
from providers_svc.keys import uow_factory_key
from providers_svc.services.stripe_objects import ListRequest, get_object, list_objects

_STRIPE_ID = re.compile(r"^[A-Za-z0-9_]{1,255}$")
_STATUS = re.compile(r"^[a-z_]{1,64}$")
_ACCOUNT = re.compile(r"^pac_[A-Za-z0-9_]{1,36}$")
_TENANT = re.compile(r"^ten_[A-Za-z0-9_]{1,60}$")
_CREATED = re.compile(r"^created\[(gt|gte|lt|lte)\]$")
# Stripe's bounds of a unix time: 0 to 9999-12-31T23:59:59Z.
_MAX_SECONDS = 253_402_300_799


def _invalid(field: str, message: str) -> ProblemError:
    errors = [FieldError(field=field, message=message)]
    return ProblemError(422, "validation_error", f"{field} {message}", errors=errors)


def _matching(query: Mapping[str, str], name: str, pattern: re.Pattern[str], message: str) -> str | None:
    value = query.get(name)
    if value is not None and not pattern.fullmatch(value):
        raise _invalid(name, message)
    return value


def _seconds(name: str, raw: str) -> datetime:
    if not re.fullmatch(r"[0-9]{1,12}", raw) or int(raw) > _MAX_SECONDS:
        raise _invalid(name, "must be a unix time in seconds")
    return datetime.fromtimestamp(int(raw), UTC)


def _filters(query: Mapping[str, str]) -> ListFilter:
    """``customer``, ``status`` and Stripe's ``created`` filters: ``created=<unix seconds>`` or any of
    ``created[gt]``, ``created[gte]``, ``created[lt]``, ``created[lte]``."""
    bounds: dict[str, datetime] = {}
    for name, raw in query.items():
        if name == "created":
            bounds["gte"] = bounds["lte"] = _seconds(name, raw)
        elif name.startswith("created["):
            match = _CREATED.fullmatch(name)
            if match is None:
                raise _invalid(name, "is not a filter: created[gt], created[gte], created[lt] or created[lte]")
            bounds[match.group(1)] = _seconds(name, raw)
    return ListFilter(
        customer=_matching(query, "customer", _STRIPE_ID, "must be a Stripe id"),
        status=_matching(query, "status", _STATUS, "must be 1-64 of a-z and _"),
        created_gt=bounds.get("gt"),
        created_gte=bounds.get("gte"),
        created_lt=bounds.get("lt"),
        created_lte=bounds.get("lte"),
    )


def _kind(request: web.Request) -> str:
    kind = KIND_OF_PATH.get(request.match_info["kind"])
    if kind is None:
        raise ProblemError(404, "not_found", f"No such list: one of {', '.join(sorted(KIND_OF_PATH))}")
    return kind


def _list_request(request: web.Request, kind: str, scope: Scope) -> ListRequest:
    query = request.query
    after = _matching(query, "starting_after", _STRIPE_ID, "must be a Stripe id")
    before = _matching(query, "ending_before", _STRIPE_ID, "must be a Stripe id")
    if after is not None and before is not None:
        raise ProblemError(422, "validation_error", "starting_after and ending_before cannot be combined")
    return ListRequest(
        kind=kind,
        scope=scope,
        filters=_filters(query),
        limit=query_int(query.get("limit"), "limit", default=20, lo=1, hi=100),
        starting_after=after,
        ending_before=before,
    )


def object_json(row: StripeObjectRow, *, admin: bool = False) -> dict[str, Any]:
    """A projected object: our fields (times RFC 3339, currency upper case) and, under
    ``stripe_object``, the object exactly as Stripe last described it."""
    body: dict[str, Any] = {
        "id": row.stripe_id,
        "object": row.object,
        "account": row.account_id,
        "stripe_account": row.stripe_account,
        "livemode": row.livemode,
        "deleted": row.deleted,
        "created": rfc3339(row.created),
        "customer": row.customer,
        "status": row.status,
        "amount": row.amount,
        "currency": row.currency,
        "metadata": row.object_metadata,
        "subscription_metadata": row.subscription_metadata,
        "sequence": row.sequence,
        "stripe_event_id": row.event_id,
        "stripe_event_type": row.event_type,
        "updated_at": rfc3339(row.updated_at),
        "stripe_object": row.data,
    }
    if admin:
        body["tenant_id"] = row.tenant_id
    return body


def _page(rows: list[StripeObjectRow], limit: int, has_more: bool, *, admin: bool = False) -> web.Response:
    data = [object_json(row, admin=admin) for row in rows]
    return web.json_response({"object": "list", "data": data, "limit": limit, "has_more": has_more})


def _tenant_scope(request: web.Request) -> Scope:
    tenant_id = require_tenant(request)
    return Scope.of_tenant(tenant_id, request[caller_key].livemode)


def _admin_scope(request: web.Request) -> Scope:
    caller = request[caller_key]
    # payments-svc holds a key this service accepts too, and a tenant's token is no admin's.
    if caller.service != "gateway" or caller.tenant_id is not None:
        raise ProblemError(403, "forbidden", "The Stripe projections are administered through the gateway only")
    return Scope(
        tenant_id=_matching(request.query, "tenant", _TENANT, "must be a tenant id"),
        account_id=_matching(request.query, "account", _ACCOUNT, "must be a provider account id"),
    )


def _stripe_id(request: web.Request, kind: str) -> str:
    stripe_id = request.match_info["stripe_id"]
    if not _STRIPE_ID.fullmatch(stripe_id):
        raise ProblemError(404, "not_found", f"No such {kind}")
    return stripe_id


async def tenant_list(request: web.Request) -> web.Response:
    scope = _tenant_scope(request)
    listed = _list_request(request, _kind(request), scope)
    rows, has_more = await list_objects(request.app[uow_factory_key], listed)
    return _page(rows, listed.limit, has_more)


async def tenant_get(request: web.Request) -> web.Response:
    scope = _tenant_scope(request)
    kind = _kind(request)
    row = await get_object(request.app[uow_factory_key], kind, scope, _stripe_id(request, kind))
    return web.json_response(object_json(row))


async def admin_list(request: web.Request) -> web.Response:
    scope = _admin_scope(request)
    listed = _list_request(request, _kind(request), scope)
    rows, has_more = await list_objects(request.app[uow_factory_key], listed)
    return _page(rows, listed.limit, has_more, admin=True)


async def admin_get(request: web.Request) -> web.Response:
    scope = _admin_scope(request)
    kind = _kind(request)
    row = await get_object(request.app[uow_factory_key], kind, scope, _stripe_id(request, kind))
    return web.json_response(object_json(row, admin=True))


def add_stripe_object_routes(app: web.Application) -> None:
    app.router.add_get("/v1/stripe/{kind}", tenant_list)
    app.router.add_get("/v1/stripe/{kind}/{stripe_id}", tenant_get)
    app.router.add_get("/admin/stripe/{kind}", admin_list)
    app.router.add_get("/admin/stripe/{kind}/{stripe_id}", admin_get)
