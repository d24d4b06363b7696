"""The one exception type for expected errors. Pure (no aiohttp), so domain code may raise it."""

from __future__ import annotations

from typing import Any

from billing_contracts.problems import FieldError

TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Validation failed",
    429: "Too many requests",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
}


class ProblemError(Exception):
    """An expected error with an HTTP status and a stable ``code``. 500 is reserved for bugs."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str | None = None,
        *,
        title: str | None = None,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or code)
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title or TITLES.get(status, "Error")
        self.errors = errors
        self.headers = headers or {}
        # RFC 9457 extension members beyond ``errors`` (e.g. a refund's ``refundable`` amount).
        self.extensions = extensions or {}
