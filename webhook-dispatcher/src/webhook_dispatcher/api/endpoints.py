"""Handlers of ``/v1/webhook-endpoints``: parse, call a use case, serialize."""

from __future__ import annotations

from aiohttp import web
from billing_runtime.internal_auth import caller_key, require_tenant
from billing_runtime.problems import read_json_object
from billing_runtime.validation import parse

from webhook_dispatcher.api.schemas import delivery_json, endpoint_json, list_page, list_query, unknown_cursor, valid_id
from webhook_dispatcher.db.repositories import UnknownCursor
from webhook_dispatcher.domain.commands import EndpointCreate, EndpointUpdate, Replay
from webhook_dispatcher.domain.errors import NotFound
from webhook_dispatcher.keys import deps_key
from webhook_dispatcher.services import endpoints


def _endpoint_id(request: web.Request) -> str:
    endpoint_id = request.match_info["endpoint_id"]
    if not valid_id(endpoint_id):
        raise NotFound("webhook endpoint")
    return endpoint_id


async def create(request: web.Request) -> web.Response:
    tenant_id = require_tenant(request)
    cmd = parse(EndpointCreate, await read_json_object(request))
    livemode = request[caller_key].livemode
    created = await endpoints.create_endpoint(request.app[deps_key], tenant_id, cmd, livemode=livemode)
    return web.json_response(endpoint_json(created.endpoint, created.secret), status=201)


async def list_(request: web.Request) -> web.Response:
    tenant_id = require_tenant(request)
    query = list_query(request.query)
    try:
        rows = await endpoints.list_endpoints(
            request.app[deps_key], tenant_id, limit=query.fetch, offset=query.offset, cursor=query.cursor
        )
    except UnknownCursor as exc:
        raise unknown_cursor(query) from exc
    return web.json_response(list_page(query, rows, endpoint_json))


async def get(request: web.Request) -> web.Response:
    tenant_id = require_tenant(request)
    endpoint = await endpoints.get_endpoint(request.app[deps_key], tenant_id, _endpoint_id(request))
    return web.json_response(endpoint_json(endpoint))


async def update(request: web.Request) -> web.Response:
    tenant_id = require_tenant(request)
    endpoint_id = _endpoint_id(request)
    cmd = parse(EndpointUpdate, await read_json_object(request))
    endpoint = await endpoints.update_endpoint(request.app[deps_key], tenant_id, endpoint_id, cmd)
    return web.json_response(endpoint_json(endpoint))


async def delete(request: web.Request) -> web.Response:
    tenant_id = require_tenant(request)
    endpoint_id = _endpoint_id(request)
    await endpoints.delete_endpoint(request.app[deps_key], tenant_id, endpoint_id)
    return web.json_response({"id": endpoint_id, "object": "webhook_endpoint", "deleted": True})


async def rotate_secret(request: web.Request) -> web.Response:
    tenant_id = require_tenant(request)
    rotated = await endpoints.rotate_secret(request.app[deps_key], tenant_id, _endpoint_id(request))
    return web.json_response(endpoint_json(rotated.endpoint, rotated.secret))


async def test(request: web.Request) -> web.Response:
    tenant_id = require_tenant(request)
    delivery = await endpoints.send_test(request.app[deps_key], tenant_id, _endpoint_id(request))
    return web.json_response(delivery_json(delivery), status=202)


async def replay(request: web.Request) -> web.Response:
    tenant_id = require_tenant(request)
    endpoint_id = _endpoint_id(request)
    cmd = parse(Replay, await read_json_object(request))
    count = await endpoints.replay(request.app[deps_key], tenant_id, endpoint_id, cmd)
    return web.json_response({"object": "webhook_replay", "endpoint_id": endpoint_id, "replayed": count}, status=202)
