"""What the tenant handlers share: the ``Idempotency-Key`` header, ids in paths and list cursors, and
the stored-response answer of an idempotent POST."""

from __future__ import annotations

import re

from aiohttp import web
from billing_contracts.problems import FieldError
from billing_runtime.errors import ProblemError

from payments_svc.domain.errors import NotFound

_IDEMPOTENCY_KEY = re.compile(r"^[\x20-\x7e]{1,255}$")
_ID = re.compile(r"^[a-z]{2,8}_[0-9a-z]{1,40}$")


def idempotency_key(request: web.Request) -> str:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        raise ProblemError(400, "idempotency_key_missing", "The Idempotency-Key header is required.")
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise ProblemError(400, "idempotency_key_invalid", "Idempotency-Key must be 1-255 printable ASCII characters.")
    return key


def stored_json(status: int, text: str, *, replayed: bool = False) -> web.Response:
    response = web.Response(status=status, text=text, content_type="application/json")
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def path_id(request: web.Request, name: str, what: str = "payment") -> str:
    """The id in the path, or 404 for one that cannot be an id (the same answer as an unknown one)."""
    value = request.match_info[name]
    if not _ID.fullmatch(value):
        raise NotFound(what)
    return value


def list_cursor(raw: str | None, name: str, what: str = "payment") -> str | None:
    if raw is not None and not _ID.fullmatch(raw):
        raise ProblemError(
            422,
            "validation_error",
            f"{name} must be a {what} id",
            errors=[FieldError(field=name, message=f"must be a {what} id")],
        )
    return raw


def unknown_cursor(name: str) -> ProblemError:
    # As the dispatcher's lists (and Stripe's): the field named, the same answer for an unknown id
    # and another tenant's object, so nothing is revealed.
    return ProblemError(
        422,
        "validation_error",
        f"{name}: no such object",
        errors=[FieldError(field=name, message="no such object")],
    )
