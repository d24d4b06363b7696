"""Helpers the dashboard's page handlers share: checked ids, paging links, notices."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from aiohttp import web
from billing_runtime.keys import request_id_key

from checkout_web.dashboard.api import Answer
from checkout_web.dashboard.guard import require_session
from checkout_web.keys import tenant_api_key

OBJECT_ID = re.compile(r"^[a-z]{2,8}_[A-Za-z0-9_\-]{1,60}$")
EVENT_ID = re.compile(r"^evt_[A-Za-z0-9_\-]{1,60}$")
PRINTABLE = re.compile(r"^[^\x00-\x1f\x7f]{1,128}$")
CODE = re.compile(r"^[a-z_]{1,64}$")


def path_id(request: web.Request, name: str, prefix: str) -> str:
    """A path parameter that can be an id of ours; anything else is a 404 without a gateway call, so
    only checked values are ever put into a gateway URL."""
    value = request.match_info[name]
    if not OBJECT_ID.fullmatch(value) or not value.startswith(prefix + "_"):
        raise web.HTTPNotFound
    return value


async def api_call(
    request: web.Request,
    method: str,
    path: str,
    *,
    query: Mapping[str, str] | None = None,
    json: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Answer:
    session = await require_session(request)
    return await request.app[tenant_api_key].call(
        method,
        path,
        token=session.access_token,
        query=query,
        json=json,
        headers=headers,
        request_id=request.get(request_id_key),
    )


def cursor_links(
    base: str,
    filters: Mapping[str, str],
    data: list[dict[str, Any]],
    *,
    has_more: bool,
    came_back: bool,
    came_forward: bool,
) -> dict[str, str | None]:
    """Stripe-style paging, newest first: "older" continues after the last row, "newer" before the
    first. ``has_more`` is about the direction the page was asked in."""
    kept = {k: v for k, v in filters.items() if v}

    def link(**cursor: str) -> str:
        query = "&".join(f"{k}={_quote(v)}" for k, v in {**kept, **cursor}.items())
        return f"{base}?{query}" if query else base

    older = newer = None
    if data:
        if (has_more and not came_back) or came_back:
            older = link(starting_after=str(data[-1]["id"]))
        if (has_more and came_back) or came_forward:
            newer = link(ending_before=str(data[0]["id"]))
    return {"older": older, "newer": newer}


def _quote(value: str) -> str:
    return quote(value, safe="")


def cursor_query(request: web.Request) -> tuple[dict[str, str], str | None]:
    """The cursor of a list page (one of starting_after / ending_before), or an error message."""
    cursor: dict[str, str] = {}
    for name in ("starting_after", "ending_before"):
        value = request.query.get(name)
        if value is not None:
            if not OBJECT_ID.fullmatch(value):
                return {}, "That page link is not valid."
            cursor[name] = value
    if len(cursor) > 1:
        return {}, "That page link is not valid."
    return cursor, None


NOTICES = {
    "refund_created": "Refund requested. It stays pending until the provider confirms it.",
    "cancelled": "Payment cancelled.",
    "captured": "Payment captured: the provider took the amount, and released the rest of what it held.",
    "endpoint_updated": "Endpoint saved.",
    "test_sent": "Test event sent. Its delivery appears below within a few seconds.",
    "retried": "Retry requested: one attempt is being made now.",
    "replayed": "Replay requested.",
}

ERRORS = {
    "invalid_state": "The payment is not in a state that allows this.",
    "amount_exceeds_refundable": "The amount is more than what is left to refund.",
    "validation_error": "Some values were not accepted. Check them and try again.",
    "idempotency_key_in_use": "The same request is still being processed. Reload in a moment.",
    "idempotency_key_reused": "This form was already used for a different request. Reload and try again.",
    "refund_not_supported": "This payment's provider does not refund through the platform.",
    "partial_refund_not_supported": "This payment's provider refunds whole payments only.",
    "refund_window_closed": "This payment can no longer be refunded at its provider.",
    "amount_exceeds_capturable": "The amount is more than the provider holds for this payment.",
    "capture_refused": "The provider refused the capture.",
    "bad_form": "Some values were not accepted. Check them and try again.",
}


def notices(request: web.Request) -> dict[str, str | None]:
    """The page's notice and error, from fixed texts only (the query names which: nothing is reflected)."""
    notice = NOTICES.get(request.query.get("notice", ""))
    code = request.query.get("error", "")
    error = (ERRORS.get(code) or "The platform refused this request.") if CODE.fullmatch(code) else None
    return {"notice": notice, "error": error}


def redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})
