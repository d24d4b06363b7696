"""Rendering helpers: every HTML response goes through ``render`` so it gets the nonce and no-store."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from yarl import URL

from checkout_web.keys import embedded_page_key
from checkout_web.security import csp_nonce


@dataclass(frozen=True)
class Link:
    href: str
    label: str


def render(request: web.Request, template: str, context: Mapping[str, Any], *, status: int = 200) -> web.Response:
    # A callable, so only a page that really has an inline script gets a nonce in its CSP.
    nonce = functools.partial(csp_nonce, request)
    extra = {"csp_nonce": nonce, "embedded": request.get(embedded_page_key)}
    response = aiohttp_jinja2.render_template(template, request, {**context, **extra}, status=status)
    # A checkout's state changes under the payer's feet and its URL is a credential: never cache it.
    response.headers["Cache-Control"] = "no-store"
    return response


def message_page(
    request: web.Request,
    *,
    status: int,
    title: str,
    message: str,
    tone: str = "neutral",
    link: Link | None = None,
    summary: Mapping[str, Any] | None = None,
    detail: str | None = None,
    test_mode: bool = False,
) -> web.Response:
    """A page that explains something in words: never a traceback, never raw JSON."""
    context = {
        "title": title,
        "message": message,
        "tone": tone,
        "link": link,
        "summary": summary,
        "detail": detail,
        "test_mode": test_mode,
    }
    return render(request, "message.html", context, status=status)


def not_found_page(request: web.Request) -> web.Response:
    return message_page(
        request,
        status=404,
        title="Payment link not found",
        message="This payment link is not valid. Check that you opened the whole link, "
        "or ask the merchant for a new one.",
    )


def unavailable_page(request: web.Request, retry: Link) -> web.Response:
    return message_page(
        request,
        status=503,
        title="We can't reach the payment service",
        message="Nothing has been charged. Please try again in a moment.",
        link=retry,
    )


def broken_page(request: web.Request, status: int) -> web.Response:
    return message_page(
        request,
        status=status,
        title="Something went wrong on our side",
        message="Nothing has been charged. Please try again later, or contact the merchant.",
    )


def safe_http_url(value: str | None) -> str | None:
    """The URL if it is absolute http(s), else None: autoescaping does not stop ``javascript:`` links."""
    if not value:
        return None
    try:
        url = URL(value)
    except ValueError:
        return None
    return value if url.scheme in ("http", "https") and url.host else None
