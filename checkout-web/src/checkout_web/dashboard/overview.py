"""The read-only pages: the event log (paged with ``after``), the tenant's providers, the API docs."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from yarl import URL

from checkout_web.dashboard import rendering
from checkout_web.dashboard.common import EVENT_ID, api_call
from checkout_web.dashboard.deliveries import DELIVERY_EVENT_TYPES
from checkout_web.dashboard.guard import require_session
from checkout_web.dashboard.sections import load
from checkout_web.keys import settings_key


async def home(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther("/dashboard/payments")


async def events(request: web.Request) -> web.Response:
    await require_session(request)
    after = request.query.get("after", "")
    type_ = request.query.get("type", "")
    context: dict[str, Any] = {"title": "Events", "after": after, "type": type_, "event_types": DELIVERY_EVENT_TYPES}
    if (after and not EVENT_ID.fullmatch(after)) or (type_ and type_ not in DELIVERY_EVENT_TYPES):
        context.update(error="That page link or filter is not valid.", events=None)
        return rendering.render(request, "dashboard/events.html", context, status=400, section="events")
    answer = await api_call(request, "GET", "v1/events", query={"after": after, "type": type_, "limit": "50"})
    data = [d for d in answer.body.get("data", []) if isinstance(d, dict)]
    following = None
    if data and answer.body.get("has_more"):
        following = str(
            URL("/dashboard/events").with_query({k: v for k, v in (("type", type_), ("after", data[-1]["id"])) if v})
        )
    context.update(events=data, following=following)
    return rendering.render(request, "dashboard/events.html", context, section="events")


async def providers(request: web.Request) -> web.Response:
    await require_session(request)
    listed = await load(api_call(request, "GET", "v1/providers"), missing_is_unavailable=True)
    return rendering.render(
        request, "dashboard/providers.html", {"title": "Providers", "providers": listed}, section="providers"
    )


async def docs(request: web.Request) -> web.Response:
    session = await require_session(request)
    settings = request.app[settings_key]
    gateway = (settings.public_gateway_url or settings.gateway_url).rstrip("/")
    checkout = (settings.public_checkout_url or f"{request.scheme}://{request.host}").rstrip("/")
    context = {"title": "API docs", "gateway": gateway, "checkout": checkout, "app_name": session.app_name}
    return rendering.render(request, "dashboard/docs.html", context, section="docs")
