"""The exceptions the client raises: one per HTTP status class of API.md, each carrying the problem.

Branch on ``code`` (stable, machine-readable), never on ``title`` or ``detail``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from pydantic import ValidationError as PydanticValidationError

from billing_client.models import FieldError, Problem

__all__ = [
    "APIError",
    "AuthenticationError",
    "BillingError",
    "ConflictError",
    "NetworkError",
    "NotFoundError",
    "PermissionDeniedError",
    "PermissionError",
    "RateLimitError",
    "ServiceUnavailableError",
    "ValidationError",
    "WebhookVerificationError",
    "error_from_response",
]


class BillingError(Exception):
    """Base of every error of this client; for an HTTP error, the problem's members are attributes."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        problem: Problem | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.problem = problem
        self.code = problem.code if problem else None
        self.title = problem.title if problem else None
        self.detail = problem.detail if problem else None
        self.errors: list[FieldError] = list(problem.errors) if problem else []
        # The body's request_id, else the X-Request-Id header: quote it when asking for support.
        self.request_id = (problem.request_id if problem else None) or request_id
        # Seconds the server asked to wait (429, 503), when it said so.
        self.retry_after = retry_after


class APIError(BillingError):
    """An HTTP error with no class of its own (400, 413, 415, 500, 502, ...)."""


class AuthenticationError(BillingError):
    """401: wrong app name or secret, or an access token refused even after one refresh."""


# Shadows the builtin inside this package only, as the name API users look for; PermissionDeniedError
# is the same class under a name that shadows nothing.
class PermissionError(BillingError):
    """403: authenticated but not allowed."""


PermissionDeniedError = PermissionError


class NotFoundError(BillingError):
    """404: no such object, or another tenant's (the API never says which)."""


class ConflictError(BillingError):
    """409: not allowed in the object's current state (``invalid_state``), or a key still in flight."""


class ValidationError(BillingError):
    """422: field validation (``errors`` names each field), or an Idempotency-Key reused with another body."""


class RateLimitError(BillingError):
    """429 after every retry: the tenant's rate limit (``retry_after`` says how long to wait)."""


class ServiceUnavailableError(BillingError):
    """503 after every retry: a dependency is down; nothing was half-done."""


class NetworkError(BillingError):
    """No HTTP answer after every retry: connection refused or reset, timeout, broken response."""


class WebhookVerificationError(BillingError):
    """A webhook whose signature, timestamp or body does not verify: answer it 400 and ignore it."""


_BY_STATUS: dict[int, type[BillingError]] = {
    401: AuthenticationError,
    403: PermissionError,
    404: NotFoundError,
    409: ConflictError,
    422: ValidationError,
    429: RateLimitError,
    503: ServiceUnavailableError,
}


def parse_problem(status: int, body: bytes) -> Problem:
    """The problem+json body, or one made up from the status when the body is not one (a proxy's page)."""
    try:
        raw = json.loads(body)
        if isinstance(raw, dict):
            return Problem.model_validate(raw)
    except (ValueError, PydanticValidationError):
        pass
    text = body[:200].decode("utf-8", "replace").strip()
    return Problem(status=status, title=f"HTTP {status}", detail=text or None)


def error_from_response(
    status: int, body: bytes, headers: Mapping[str, str], retry_after: float | None = None
) -> BillingError:
    """The exception for an error answer: its class by status, the problem's members as attributes."""
    problem = parse_problem(status, body)
    cls = _BY_STATUS.get(status, APIError)
    summary = f"{status} {problem.code or problem.title or 'error'}"
    if problem.detail:
        summary += f": {problem.detail}"
    return cls(summary, status=status, problem=problem, request_id=headers.get("x-request-id"), retry_after=retry_after)
