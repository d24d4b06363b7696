"""What one public operation declares: method, path as routed, auth, parameters, body and replies.

Error replies that follow from the declaration (a body can be malformed, a tenant rate-limited, an
id unknown) are added by the document builder, so a declaration lists only what is its own."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel

JSON = "application/json"
PROBLEM_JSON = "application/problem+json"
HTML = "text/html"


class Auth(StrEnum):
    """How a caller is authenticated; each names a security scheme of the document (or none)."""

    TENANT = "tenant"  # Authorization: Bearer <tenant access token (JWT)>
    ADMIN = "admin"  # Authorization: Bearer <admin token>
    CHECKOUT = "checkout"  # the checkout token in the path is the only credential
    PAYER_LINK = "payer_link"  # an unguessable link is the payer's credential (HTML pages)
    PROVIDER = "provider"  # the provider's own signature or credentials (callbacks)
    PUBLIC = "public"  # no credential at all


@dataclass(frozen=True)
class Param:
    """A path, query or header parameter with its JSON schema."""

    name: str
    location: Literal["path", "query", "header"]
    schema: dict[str, Any]
    description: str = ""
    required: bool = False


def path_param(name: str, description: str = "", *, pattern: str | None = None) -> Param:
    """A path parameter (always required); ``pattern``: what the handler accepts before a lookup."""
    schema: dict[str, Any] = {"type": "string"}
    if pattern is not None:
        schema["pattern"] = pattern
    return Param(name, "path", schema, description, required=True)


def query_int(name: str, description: str = "", *, default: int, lo: int, hi: int) -> Param:
    """An integer query parameter from ``lo`` to ``hi`` (as ``billing_runtime.validation.query_int``)."""
    schema = {"type": "integer", "minimum": lo, "maximum": hi, "default": default}
    return Param(name, "query", schema, description)


def query_text(
    name: str, description: str = "", *, max_length: int, pattern: str | None = None, min_length: int = 1
) -> Param:
    """A text query parameter of bounded length (as ``billing_runtime.validation.query_text``)."""
    schema: dict[str, Any] = {"type": "string", "minLength": min_length, "maxLength": max_length}
    if pattern is not None:
        schema["pattern"] = pattern
    return Param(name, "query", schema, description)


def query_choice(name: str, choices: Iterable[str], description: str = "") -> Param:
    """A query parameter that is one of ``choices``."""
    return Param(name, "query", {"type": "string", "enum": sorted(choices)}, description)


@dataclass(frozen=True)
class Reply:
    """One answer an operation gives: its status and body (a pydantic model, or a raw schema for
    bodies no model describes, such as an HTML page), plus the response headers it carries."""

    status: int
    description: str
    model: type[BaseModel] | None = None
    content_type: str = JSON
    schema: dict[str, Any] | None = None
    headers: tuple[str, ...] = ()
    example: Any = None


@dataclass(frozen=True)
class Operation:
    """One method on one path, exactly as the owning service routes it.

    ``errors`` lists the problem+json statuses this operation gives beyond the ones its declaration
    implies (see ``billing_contracts.openapi.document.implied_errors``)."""

    method: str
    path: str
    summary: str
    tag: str
    auth: Auth
    replies: tuple[Reply, ...]
    operation_id: str
    description: str = ""
    params: tuple[Param, ...] = ()
    body: type[BaseModel] | None = None
    body_content_type: str = JSON
    body_schema: dict[str, Any] | None = None
    body_required: bool = True
    idempotency_key: bool = False
    errors: tuple[int, ...] = ()
    # Provider callbacks answer in the provider's own format: no problem+json is implied for them.
    problems: bool = True
    # Security schemes of the document that stand for ``auth`` here (a provider's own signature).
    security: tuple[str, ...] = ()
    extensions: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return self.method.upper(), self.path
