"""Webhook deliveries: the list (filters endpoint, status, event type; cursor paging), one delivery with
every attempt (response code and body), and a retry."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from checkout_web.dashboard import rendering
from checkout_web.dashboard.api import ApiProblem
from checkout_web.dashboard.common import OBJECT_ID, api_call, cursor_links, cursor_query, notices, path_id, redirect
from checkout_web.dashboard.guard import posted_form, require_session
from checkout_web.dashboard.sections import load
from checkout_web.dashboard.webhooks import EVENT_TYPES

STATUSES = ("pending", "succeeded", "failed")
DELIVERY_EVENT_TYPES = (*EVENT_TYPES, "webhook.test")


async def list_deliveries(request: web.Request) -> web.Response:
    await require_session(request)
    q = request.query
    filters = {
        "endpoint_id": q.get("endpoint_id", ""),
        "status": q.get("status", ""),
        "event_type": q.get("event_type", ""),
    }
    cursor, error = cursor_query(request)
    if filters["endpoint_id"] and not OBJECT_ID.fullmatch(filters["endpoint_id"]):
        error = "That endpoint id is not valid."
    if filters["status"] and filters["status"] not in STATUSES:
        error = "Choose a status from the list."
    if filters["event_type"] and filters["event_type"] not in DELIVERY_EVENT_TYPES:
        error = "Choose an event type from the list."
    endpoints = await load(api_call(request, "GET", "v1/webhook-endpoints", query={"limit": "100"}))
    context: dict[str, Any] = {
        "title": "Deliveries",
        "filters": filters,
        "statuses": STATUSES,
        "event_types": DELIVERY_EVENT_TYPES,
        "endpoints": endpoints,
        **notices(request),
    }
    if error is not None:
        context.update(error=error, deliveries=None)
        return rendering.render(request, "dashboard/deliveries.html", context, status=400, section="deliveries")
    answer = await api_call(request, "GET", "v1/webhook-deliveries", query={**filters, **cursor, "limit": "20"})
    data = [d for d in answer.body.get("data", []) if isinstance(d, dict)]
    context["deliveries"] = data
    context["links"] = cursor_links(
        "/dashboard/deliveries",
        filters,
        data,
        has_more=bool(answer.body.get("has_more")),
        came_back="ending_before" in cursor,
        came_forward="starting_after" in cursor,
    )
    return rendering.render(request, "dashboard/deliveries.html", context, section="deliveries")


async def show_delivery(request: web.Request) -> web.Response:
    delivery_id = path_id(request, "delivery_id", "wd")
    answer = await api_call(request, "GET", f"v1/webhook-deliveries/{delivery_id}")
    context = {"title": f"Delivery {delivery_id}", "delivery": answer.body, **notices(request)}
    return rendering.render(request, "dashboard/delivery.html", context, section="deliveries")


async def retry(request: web.Request) -> web.Response:
    delivery_id = path_id(request, "delivery_id", "wd")
    await posted_form(request)
    page = f"/dashboard/deliveries/{delivery_id}"
    try:
        await api_call(request, "POST", f"v1/webhook-deliveries/{delivery_id}/retry")
    except ApiProblem as exc:
        if exc.status == 404:
            raise
        return redirect(f"{page}?error=refused")
    return redirect(f"{page}?notice=retried")
