"""Every dashboard response is rendered here: the layout's context (who is signed in, the CSRF token,
the navigation), ``Cache-Control: no-store``, and the error pages that replace tracebacks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from checkout_web.dashboard.sessions import CSRF_FIELD
from checkout_web.keys import session_key

NAV = (
    ("payments", "Payments"),
    ("webhooks", "Webhooks"),
    ("deliveries", "Deliveries"),
    ("events", "Events"),
    ("providers", "Providers"),
    ("docs", "API docs"),
)


def render(
    request: web.Request,
    template: str,
    context: Mapping[str, Any],
    *,
    status: int = 200,
    section: str | None = None,
) -> web.Response:
    session = request.get(session_key)
    base = {
        "nav": NAV,
        "section": section,
        "signed_in_as": session.app_name if session else None,
        "csrf_field": CSRF_FIELD,
        "csrf_token": session.csrf_token if session else None,
        "notice": None,
        "error": None,
    }
    response = aiohttp_jinja2.render_template(template, request, {**base, **context}, status=status)
    # Tenant data, and forms carrying the session's CSRF token: never kept by a browser or a proxy.
    response.headers["Cache-Control"] = "no-store"
    return response


def message(
    request: web.Request,
    *,
    status: int,
    title: str,
    text: str,
    link: tuple[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """An error or message page in the dashboard's layout: words, never a traceback or raw JSON."""
    response = render(request, "dashboard/message.html", {"title": title, "text": text, "link": link}, status=status)
    response.headers.update(headers or {})
    return response


def not_found(request: web.Request, what: str = "page") -> web.Response:
    return message(
        request,
        status=404,
        title="Not found",
        text=f"There is no such {what}, or it belongs to another account.",
        link=("/dashboard/payments", "Go to payments"),
    )


def unavailable(request: web.Request, *, slow_after: float | None) -> web.Response:
    if slow_after is not None:
        text = (
            f"The platform did not answer within {slow_after:g} seconds, so this page stopped waiting. "
            "Nothing was changed by this page; try again in a moment."
        )
    else:
        text = "The platform cannot be reached right now. Nothing was changed; try again in a moment."
    # A POST is never retried by the link: it leads back to the page the form was on.
    retry = request.path_qs if request.method == "GET" else page_of(request.path)
    return message(
        request,
        status=503,
        title="We can't reach the platform",
        text=text,
        link=(retry, "Try again"),
        headers={"Retry-After": "5"},
    )


def page_of(path: str) -> str:
    parts = path.rstrip("/").split("/")
    # /dashboard/<section>/<id>/<action> → /dashboard/<section>/<id>; /dashboard/<section> stays.
    return "/".join(parts[:4]) if len(parts) > 4 else "/".join(parts[:3])
