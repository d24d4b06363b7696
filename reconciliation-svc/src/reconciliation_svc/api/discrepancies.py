"""Handlers of ``/admin/reconciliation/discrepancies*``: parse, call a use case, serialize."""

from __future__ import annotations

from aiohttp import web
from billing_runtime.internal_auth import caller_key
from billing_runtime.problems import read_json_object
from billing_runtime.validation import parse

from reconciliation_svc.api.schemas import IgnoreBody, ResolveBody, discrepancy_json, list_query, valid_id
from reconciliation_svc.domain.errors import NotFound
from reconciliation_svc.keys import uow_key
from reconciliation_svc.services import discrepancies


def _discrepancy_id(request: web.Request) -> str:
    discrepancy_id = request.match_info["discrepancy_id"]
    if not valid_id(discrepancy_id):
        raise NotFound("discrepancy")
    return discrepancy_id


def _changed_by(request: web.Request) -> str:
    # The admin API has one credential (the platform admin token, checked by the gateway), so the
    # caller is "the admin, through the gateway" and nothing finer; the token's issuer says which way.
    return f"admin@{request[caller_key].service}"


async def list_(request: web.Request) -> web.Response:
    where, limit, cursor = list_query(request.query)
    rows = await discrepancies.list_discrepancies(request.app[uow_key], where, limit=limit + 1, starting_after=cursor)
    return web.json_response(
        {
            "object": "list",
            "data": [discrepancy_json(d) for d in rows[:limit]],
            "limit": limit,
            "has_more": len(rows) > limit,
        }
    )


async def get(request: web.Request) -> web.Response:
    found = await discrepancies.get_discrepancy(request.app[uow_key], _discrepancy_id(request))
    return web.json_response(discrepancy_json(found, with_changes=True))


async def resolve(request: web.Request) -> web.Response:
    discrepancy_id = _discrepancy_id(request)
    # The body is optional here (a reason is); an empty body means none.
    body = await read_json_object(request) if request.can_read_body else {}
    cmd = parse(ResolveBody, body)
    changed = await discrepancies.change_discrepancy(
        request.app[uow_key], discrepancy_id, "resolved", reason=cmd.reason, changed_by=_changed_by(request)
    )
    return web.json_response(discrepancy_json(changed, with_changes=True))


async def ignore(request: web.Request) -> web.Response:
    discrepancy_id = _discrepancy_id(request)
    cmd = parse(IgnoreBody, await read_json_object(request))
    changed = await discrepancies.change_discrepancy(
        request.app[uow_key], discrepancy_id, "ignored", reason=cmd.reason, changed_by=_changed_by(request)
    )
    return web.json_response(discrepancy_json(changed, with_changes=True))
