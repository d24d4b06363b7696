"""Sign-in (app name + secret, exchanged at the gateway for an access token kept server-side),
sign-out, and the sign-in throttle: per client address and per app name, counted in the database so
every replica counts together, and checked before the gateway is asked."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta

from aiohttp import web
from billing_runtime.keys import request_id_key

from checkout_web.dashboard import rendering
from checkout_web.dashboard.api import ApiProblem
from checkout_web.dashboard.clients import client_address
from checkout_web.dashboard.guard import field, posted_form, require_session
from checkout_web.dashboard.sessions import CSRF_FIELD, SESSION_COOKIE, SIGN_IN_COOKIE, SessionExpired, now_utc
from checkout_web.keys import login_counter_key, sessions_key, settings_key, tenant_api_key

APP_NAME = re.compile(r"^[a-z0-9-]{3,64}$")
MAX_SECRET = 256
REASONS = {
    "expired": "Your session has ended. Sign in again to continue.",
    "signed_out": "Sign in to continue.",
    "bye": "You have signed out.",
}


def _sign_in_page(
    request: web.Request, *, status: int = 200, error: str | None = None, app_name: str = ""
) -> web.Response:
    sessions = request.app[sessions_key]
    nonce = request.cookies.get(SIGN_IN_COOKIE) or secrets.token_urlsafe(24)
    reason = request.query.get("reason", "")
    response = rendering.render(
        request,
        "dashboard/sign_in.html",
        {
            "title": "Sign in",
            "form_token": sessions.sign_in_token(nonce),
            "csrf_field": CSRF_FIELD,
            "app_name": app_name,
            "error": error,
            "notice": REASONS.get(reason) if error is None else None,
        },
        status=status,
    )
    sessions.set_cookie(response, request, SIGN_IN_COOKIE, nonce, max_age=3600)
    return response


async def sign_in_page(request: web.Request) -> web.StreamResponse:
    if request.cookies.get(SESSION_COOKIE):
        try:
            await require_session(request)
        except SessionExpired:
            pass
        else:
            raise web.HTTPSeeOther("/dashboard/payments")
    return _sign_in_page(request)


def _throttled(request: web.Request, retry_after: int) -> web.Response:
    at = now_utc() + timedelta(seconds=retry_after)
    minutes = max(1, (retry_after + 59) // 60)
    return rendering.message(
        request,
        status=429,
        title="Too many sign-in attempts",
        text=f"Try again after {at:%H:%M} UTC (in about {minutes} minute{'s' if minutes != 1 else ''}).",
        link=("/dashboard/sign-in", "Back to sign-in"),
        headers={"Retry-After": str(retry_after)},
    )


async def sign_in(request: web.Request) -> web.StreamResponse:
    sessions = request.app[sessions_key]
    settings = request.app[settings_key]
    form = await request.post()
    sessions.check_sign_in_token(request, form.get(CSRF_FIELD))
    app_name = field(form, "app_name").lower()
    secret = form.get("secret")
    if not APP_NAME.fullmatch(app_name) or not isinstance(secret, str) or not 0 < len(secret) <= MAX_SECRET:
        return _sign_in_page(request, status=400, error="Enter your app name and secret.", app_name=app_name[:64])

    address = client_address(request, sessions.trusted)
    counter = request.app[login_counter_key]
    now = now_utc()
    window = timedelta(seconds=settings.login_window_seconds)
    # Both counted before the gateway is asked: a flood never reaches the gateway's token throttle,
    # whose buckets checkout-web shares with every one of its users.
    limits = ((f"client:{address}", settings.login_limit_per_client), (f"app:{app_name}", settings.login_limit_per_app))
    for key, limit in limits:
        attempts, started = await counter.hit(key, now=now, window=window)
        if attempts > limit:
            return _throttled(request, max(1, int((started + window - now).total_seconds()) + 1))

    api = request.app[tenant_api_key]
    try:
        answer = await api.call(
            "POST",
            "v1/auth/token",
            token=None,
            json={"app_name": app_name, "secret": secret},
            # The gateway's own per-client bucket then counts this user, not checkout-web (it is
            # believed when checkout-web is in GATEWAY_TRUSTED_PROXIES).
            headers={"X-Forwarded-For": address},
            request_id=request.get(request_id_key),
        )
    except ApiProblem as exc:
        if exc.status == 401:
            text = "Your account is disabled." if exc.code == "tenant_disabled" else "Wrong app name or secret."
            return _sign_in_page(request, status=401, error=text, app_name=app_name)
        if exc.status in (429, 503):
            retry = exc.body.get("_retry_after")
            return _throttled(request, int(retry) if isinstance(retry, str) and retry.isdigit() else 5)
        return _sign_in_page(request, status=400, error="Enter your app name and secret.", app_name=app_name)
    token = answer.body.get("access_token")
    expires_in = answer.body.get("expires_in")
    if not isinstance(token, str) or not isinstance(expires_in, int):
        return rendering.message(request, status=502, title="Something went wrong", text="Sign-in failed; try again.")
    await counter.reset(f"app:{app_name}")
    response = web.Response(status=303, headers={"Location": "/dashboard/payments", "Cache-Control": "no-store"})
    await sessions.start(response, request, app_name=app_name, access_token=token, expires_in=expires_in)
    return response


async def sign_out(request: web.Request) -> web.StreamResponse:
    session, _ = await posted_form(request)
    response = web.Response(
        status=303, headers={"Location": "/dashboard/sign-in?reason=bye", "Cache-Control": "no-store"}
    )
    await request.app[sessions_key].end(response, session)
    return response
