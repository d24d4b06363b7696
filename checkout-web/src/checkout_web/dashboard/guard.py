"""What stands between a dashboard request and its handler: the session (or a redirect to sign-in),
the CSRF check of every POST, and the middleware that turns every failure into a dashboard page."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from billing_runtime.outages import is_database_outage
from multidict import MultiDictProxy

from checkout_web.dashboard import rendering
from checkout_web.dashboard.api import ApiProblem, GatewayTimeout, SessionRejected
from checkout_web.dashboard.sessions import CSRF_FIELD, CsrfRefused, Session, SessionExpired, check_csrf
from checkout_web.gateway_client import GatewayUnavailable, UnexpectedGatewayResponse
from checkout_web.keys import session_key, sessions_key, tenant_api_key

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PREFIX = "/dashboard"
SIGN_IN = "/dashboard/sign-in"


class SignInRequired(Exception):
    """No session cookie at all: the visitor is sent to the sign-in page."""


async def require_session(request: web.Request) -> Session:
    """The request's session, read (and its last-seen time moved) once per request."""
    if session_key in request:
        return request[session_key]
    session = await request.app[sessions_key].current(request)
    if session is None:
        raise SignInRequired
    request[session_key] = session
    return session


async def posted_form(request: web.Request) -> tuple[Session, MultiDictProxy[str | bytes | bytearray | web.FileField]]:
    """The session and the form of a POST whose CSRF token is the session's; else ``CsrfRefused``
    before anything is done."""
    session = await require_session(request)
    form = await request.post()
    check_csrf(session, form.get(CSRF_FIELD))
    return session, form


def field(form: MultiDictProxy[str | bytes | bytearray | web.FileField], name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _to_sign_in(reason: str) -> web.Response:
    return web.Response(status=303, headers={"Location": f"{SIGN_IN}?reason={reason}", "Cache-Control": "no-store"})


@web.middleware
async def dashboard_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith(PREFIX):
        return await handler(request)
    try:
        return await handler(request)
    except SignInRequired:
        return _to_sign_in("signed_out")
    except SessionExpired:
        response = _to_sign_in("expired")
        request.app[sessions_key].clear(response)
        return response
    except SessionRejected:
        # The platform no longer takes the session's access token (expired, revoked, tenant disabled).
        response = _to_sign_in("expired")
        await request.app[sessions_key].end(response, request.get(session_key))
        return response
    except CsrfRefused:
        return rendering.message(
            request,
            status=403,
            title="This form has expired",
            text="The form was not sent from this dashboard session, so nothing was done. "
            "Reload the page and try again.",
            link=(rendering.page_of(request.path), "Back"),
        )
    except GatewayTimeout:
        return rendering.unavailable(request, slow_after=request.app[tenant_api_key].timeout_seconds)
    except GatewayUnavailable:
        return rendering.unavailable(request, slow_after=None)
    except ApiProblem as exc:
        if exc.status == 404:
            return rendering.not_found(request)
        return rendering.message(
            request, status=exc.status, title="The platform refused this", text=exc.detail or exc.code
        )
    except UnexpectedGatewayResponse:
        return rendering.message(
            request, status=502, title="Something went wrong", text="The platform gave an answer we did not expect."
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status == 404:
            return rendering.not_found(request)
        return rendering.message(request, status=exc.status, title=exc.reason, text="This page cannot be shown.")
    except Exception as exc:
        if is_database_outage(exc):
            # Its own database (sessions) is down: nobody can be let in now, and nothing was done.
            log.warning("dashboard database unavailable on %s %s: %s", request.method, request.path, type(exc).__name__)
            return rendering.message(
                request,
                status=503,
                title="The dashboard is unavailable",
                text="Sign-in and sessions are unavailable right now. Nothing was changed; try again in a moment.",
                link=(rendering.page_of(request.path) if request.method == "POST" else request.path_qs, "Try again"),
                headers={"Retry-After": "5"},
            )
        log.exception("unhandled error on %s %s", request.method, request.path)
        return rendering.message(
            request, status=500, title="Something went wrong on our side", text="Nothing was changed. Try again later."
        )
