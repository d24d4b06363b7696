"""RFC 9457 errors for aiohttp: one exception type, one middleware, never a traceback to the client."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from billing_contracts.problems import FieldError, ProblemDetails

from billing_runtime.errors import TITLES as _TITLES
from billing_runtime.errors import ProblemError as ProblemError  # re-exported: handlers raise it from here
from billing_runtime.keys import request_id_key
from billing_runtime.outages import is_database_outage, is_unstorable_text

log = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"


_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
}


def validation_error(errors: list[FieldError], detail: str | None = None) -> ProblemError:
    """A 422 naming every invalid field."""
    return ProblemError(422, "validation_error", detail or errors[0].message, errors=errors)


def problem_response(
    request: web.Request | None,
    status: int,
    code: str,
    detail: str | None = None,
    *,
    title: str | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    extensions: dict[str, Any] | None = None,
) -> web.Response:
    # Extension members never replace the standard ones (a passed-on problem may carry them too).
    extra = {k: v for k, v in (extensions or {}).items() if k not in ProblemDetails.model_fields}
    body = ProblemDetails(
        **extra,
        title=title or _TITLES.get(status, "Error"),
        status=status,
        code=code,
        detail=detail,
        errors=errors,
        instance=request.path if request is not None else None,
        request_id=request.get(request_id_key) if request is not None else None,
    )
    if status == 503 and not any(k.lower() == "retry-after" for k in (headers or {})):
        # API.md: every 503 tells the client when to come back.
        headers = {**(headers or {}), "Retry-After": "5"}
    return web.Response(
        status=status,
        body=body.model_dump_json(exclude_none=True).encode(),
        content_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


def from_error(request: web.Request, error: ProblemError) -> web.Response:
    return problem_response(
        request,
        error.status,
        error.code,
        error.detail,
        title=error.title,
        errors=error.errors,
        headers=error.headers,
        extensions=error.extensions,
    )


@web.middleware
async def problem_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Render ``ProblemError`` and aiohttp's HTTP errors as problem+json; any other exception as a
    logged 500 without details."""
    try:
        return await handler(request)
    except ProblemError as exc:
        return from_error(request, exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _CODES.get(exc.status, "error")
        detail = exc.text if exc.text and not exc.text.startswith(str(exc.status)) else exc.reason
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        return problem_response(request, exc.status, code, detail, headers=headers)
    except Exception as exc:
        if is_database_outage(exc):
            log.warning("database unavailable on %s %s: %r", request.method, request.path, exc)
            return problem_response(
                request,
                503,
                "database_unavailable",
                "The database is unavailable; retry later.",
                headers={"Retry-After": "5"},
            )
        if is_unstorable_text(exc):
            # A check that should have refused the input earlier did not: still the client's error.
            log.warning("unstorable text in %s %s: %s", request.method, request.path, type(exc).__name__)
            return problem_response(
                request, 400, "invalid_request", "The request contains a character that is not allowed."
            )
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem_response(request, 500, "internal_error", "An unexpected error occurred.")


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object, or a 415/400 problem. Over-size bodies become 413 (client_max_size)."""
    if request.content_type != "application/json":
        raise ProblemError(415, "unsupported_media_type", "Content-Type must be application/json")
    raw = await request.read()
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        # RecursionError: absurdly deep nesting is malformed input, not a server fault.
        raise ProblemError(400, "invalid_json", "Body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise ProblemError(400, "invalid_json", "Body must be a JSON object")
    return data
