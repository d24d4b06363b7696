"""Security headers on every response, and the per-request nonce that lets exactly our inline script run."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web

from checkout_web.keys import csp_nonce_key, frame_ancestors_key

OnPrepare = Callable[[web.Request, web.StreamResponse], Awaitable[None]]


def csp_nonce(request: web.Request) -> str:
    """The nonce for this response's inline script, made on first use."""
    nonce = request.get(csp_nonce_key)
    if nonce is None:
        nonce = secrets.token_urlsafe(18)
        request[csp_nonce_key] = nonce
    return nonce


def content_security_policy(nonce: str | None, frame_ancestors: str) -> str:
    directives = [
        "default-src 'none'",
        f"script-src 'nonce-{nonce}'" if nonce else "script-src 'none'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        # No form-action: browsers apply it to the redirect after the pay form is posted, and that
        # redirect goes to the provider's own origin, which we cannot list in advance.
        # Only the tenant's own sites may frame a payment's pages (the SDK's modal); every other
        # response, a 404 or an outage page among them, names no tenant and may be framed by nobody.
        f"frame-ancestors {frame_ancestors}",
    ]
    return "; ".join(directives)


# The dashboard: no inline script at all (its script is a file of ours), never framed, forms post only
# to itself.
DASHBOARD_CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def security_headers() -> OnPrepare:
    """An ``on_response_prepare`` hook, so error responses made by outer middlewares get the headers too."""

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        headers = response.headers
        if request.path.startswith("/dashboard"):
            headers.setdefault("Content-Security-Policy", DASHBOARD_CSP)
            headers.setdefault("X-Frame-Options", "DENY")
            # Signed-in pages set no-store themselves; redirects and errors here must not be kept either.
            headers.setdefault("Cache-Control", "no-store")
        frame_ancestors = request.get(frame_ancestors_key, "'none'")
        headers.setdefault(
            "Content-Security-Policy", content_security_policy(request.get(csp_nonce_key), frame_ancestors)
        )
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")

    return on_prepare
