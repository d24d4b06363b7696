"""Handlers of ``/v1/webhook-deliveries``: the delivery log and manual retries."""

from __future__ import annotations

import re

from aiohttp import web
from billing_runtime.internal_auth import require_tenant
from billing_runtime.validation import query_choice

from webhook_dispatcher.api.schemas import (
    delivery_detail_json,
    delivery_json,
    list_page,
    list_query,
    unknown_cursor,
    valid_id,
)
from webhook_dispatcher.db.repositories import UnknownCursor
from webhook_dispatcher.domain.errors import NotFound
from webhook_dispatcher.domain.event_types import PUBLIC_EVENT_TYPES
from webhook_dispatcher.keys import deps_key
from webhook_dispatcher.services import deliveries

STATUSES = ("pending", "succeeded", "failed")
# Event ids are ``evt_`` + url-safe base64 (billing_contracts.envelope.new_event_id).
_EVENT_ID = re.compile(r"^evt_[A-Za-z0-9_\-]{1,60}$")


def _delivery_id(request: web.Request) -> str:
    delivery_id = request.match_info["delivery_id"]
    if not valid_id(delivery_id):
        raise NotFound("webhook delivery")
    return delivery_id


async def list_(request: web.Request) -> web.Response:
    tenant_id = require_tenant(request)
    q = request.query
    query = list_query(q)
    status = query_choice(q.get("status"), "status", STATUSES)
    event_type = query_choice(q.get("event_type"), "event_type", PUBLIC_EVENT_TYPES)
    endpoint_id = q.get("endpoint_id")
    # The deliveries of one event (the webhooks sent about a payment: its events' ids come from
    # GET /v1/events?payment_id=); an extension beyond API.md.
    event_id = q.get("event_id")
    if (endpoint_id is not None and not valid_id(endpoint_id)) or (
        event_id is not None and not _EVENT_ID.fullmatch(event_id)
    ):
        # An id that cannot exist matches nothing, like an id of another tenant.
        return web.json_response(list_page(query, [], delivery_json))
    try:
        rows = await deliveries.list_deliveries(
            request.app[deps_key],
            tenant_id,
            limit=query.fetch,
            offset=query.offset,
            endpoint_id=endpoint_id,
            status=status,
            event_type=event_type,
            event_id=event_id,
            cursor=query.cursor,
        )
    except UnknownCursor as exc:
        raise unknown_cursor(query) from exc
    return web.json_response(list_page(query, rows, delivery_json))


async def get(request: web.Request) -> web.Response:
    tenant_id = require_tenant(request)
    detail = await deliveries.get_delivery(request.app[deps_key], tenant_id, _delivery_id(request))
    return web.json_response(delivery_detail_json(detail.delivery, detail.event, detail.attempts))


async def retry(request: web.Request) -> web.Response:
    tenant_id = require_tenant(request)
    delivery = await deliveries.retry_delivery(request.app[deps_key], tenant_id, _delivery_id(request))
    return web.json_response(delivery_json(delivery), status=202)
