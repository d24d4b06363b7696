"""Webhook endpoints: list and create, edit (event filter, description, enabled), rotate the secret
(shown once), send a test event, replay deliveries since a time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from checkout_web.dashboard import rendering
from checkout_web.dashboard.api import ApiProblem
from checkout_web.dashboard.common import CODE, api_call, notices, path_id, redirect
from checkout_web.dashboard.guard import field, posted_form, require_session
from checkout_web.dashboard.sections import load

EVENT_TYPES = (
    "payment.created",
    "payment.pending",
    "payment.attempt_failed",
    "payment.authorized",
    "payment.succeeded",
    "payment.failed",
    "payment.expired",
    "payment.cancelled",
    "refund.created",
    "refund.succeeded",
    "refund.failed",
    "dispute.created",
    "dispute.closed",
    "endpoint.disabled",
)
MAX_URL = 2048
MAX_DESCRIPTION = 500


def _events(form: MultiDictProxy[str | bytes | bytearray | web.FileField]) -> list[str] | None:
    """The chosen event filter: every event ("*"), or the ticked types; None when nothing valid."""
    if field(form, "all_events") == "yes":
        return ["*"]
    chosen = [v for v in form.getall("events", []) if isinstance(v, str) and v in EVENT_TYPES]
    return chosen or None


def _back(page: str, exc: ApiProblem) -> web.Response:
    if exc.status == 404:
        raise exc
    return redirect(f"{page}?error={exc.code if CODE.fullmatch(exc.code) else 'refused'}")


async def list_endpoints(request: web.Request) -> web.Response:
    await require_session(request)
    endpoints = await load(api_call(request, "GET", "v1/webhook-endpoints", query={"limit": "100"}))
    context = {"title": "Webhooks", "endpoints": endpoints, "event_types": EVENT_TYPES, **notices(request)}
    return rendering.render(request, "dashboard/webhooks.html", context, section="webhooks")


async def create_endpoint(request: web.Request) -> web.Response:
    _, form = await posted_form(request)
    url = field(form, "url")
    description = field(form, "description")
    events = _events(form)
    if not url or len(url) > MAX_URL or len(description) > MAX_DESCRIPTION or events is None:
        return redirect("/dashboard/webhooks?error=bad_form")
    body: dict[str, Any] = {"url": url, "events": events}
    if description:
        body["description"] = description
    try:
        answer = await api_call(request, "POST", "v1/webhook-endpoints", json=body)
    except ApiProblem as exc:
        return _back("/dashboard/webhooks", exc)
    # The secret is shown on this answer only (never put in a URL, never stored by checkout-web).
    return _secret_page(request, answer.body, created=True)


def _secret_page(request: web.Request, endpoint: dict[str, Any], *, created: bool) -> web.Response:
    context = {"title": "Signing secret", "endpoint": endpoint, "secret": endpoint.get("secret"), "created": created}
    return rendering.render(request, "dashboard/secret.html", context, section="webhooks")


async def show_endpoint(request: web.Request) -> web.Response:
    endpoint_id = path_id(request, "endpoint_id", "we")
    answer = await api_call(request, "GET", f"v1/webhook-endpoints/{endpoint_id}")
    deliveries = await load(
        api_call(request, "GET", "v1/webhook-deliveries", query={"endpoint_id": endpoint_id, "limit": "10"})
    )
    context = {
        "title": f"Endpoint {endpoint_id}",
        "endpoint": answer.body,
        "deliveries": deliveries,
        "event_types": EVENT_TYPES,
        **notices(request),
    }
    return rendering.render(request, "dashboard/endpoint.html", context, section="webhooks")


async def update_endpoint(request: web.Request) -> web.Response:
    endpoint_id = path_id(request, "endpoint_id", "we")
    _, form = await posted_form(request)
    page = f"/dashboard/webhooks/{endpoint_id}"
    events = _events(form)
    description = field(form, "description")
    if events is None or len(description) > MAX_DESCRIPTION:
        return redirect(f"{page}?error=bad_form")
    body = {"events": events, "description": description or None, "enabled": field(form, "enabled") == "yes"}
    try:
        await api_call(request, "PATCH", f"v1/webhook-endpoints/{endpoint_id}", json=body)
    except ApiProblem as exc:
        return _back(page, exc)
    return redirect(f"{page}?notice=endpoint_updated")


async def rotate_secret(request: web.Request) -> web.Response:
    endpoint_id = path_id(request, "endpoint_id", "we")
    await posted_form(request)
    try:
        answer = await api_call(request, "POST", f"v1/webhook-endpoints/{endpoint_id}/rotate-secret")
    except ApiProblem as exc:
        return _back(f"/dashboard/webhooks/{endpoint_id}", exc)
    return _secret_page(request, answer.body, created=False)


async def send_test(request: web.Request) -> web.Response:
    endpoint_id = path_id(request, "endpoint_id", "we")
    await posted_form(request)
    page = f"/dashboard/webhooks/{endpoint_id}"
    try:
        await api_call(request, "POST", f"v1/webhook-endpoints/{endpoint_id}/test")
    except ApiProblem as exc:
        return _back(page, exc)
    return redirect(f"{page}?notice=test_sent")


async def replay(request: web.Request) -> web.Response:
    endpoint_id = path_id(request, "endpoint_id", "we")
    _, form = await posted_form(request)
    page = f"/dashboard/webhooks/{endpoint_id}"
    status = field(form, "status") or "failed"
    try:
        # A datetime-local field: read as UTC, as every time on these pages is.
        since = datetime.fromisoformat(field(form, "since")).replace(tzinfo=UTC)
    except ValueError:
        return redirect(f"{page}?error=bad_form")
    if status not in ("failed", "all"):
        return redirect(f"{page}?error=bad_form")
    body = {"since": since.isoformat().replace("+00:00", "Z"), "status": status}
    try:
        await api_call(request, "POST", f"v1/webhook-endpoints/{endpoint_id}/replay", json=body)
    except ApiProblem as exc:
        return _back(page, exc)
    return redirect(f"{page}?notice=replayed")
