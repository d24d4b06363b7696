"""Validated inputs of the endpoint use cases (HTTP-free; the handlers turn errors into 422s)."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from webhook_dispatcher.domain.addresses import AddressPolicy
from webhook_dispatcher.domain.event_types import PUBLIC_EVENT_TYPES, WEBHOOK_TEST

MAX_URL_LENGTH = 2048


def _check_events(value: list[str]) -> list[str]:
    if not value:
        raise ValueError('must list at least one event type, or be ["*"]')
    if "*" in value:
        if len(value) != 1:
            raise ValueError('"*" cannot be combined with explicit types')
        return value
    unknown = sorted(set(value) - PUBLIC_EVENT_TYPES)
    if unknown:
        raise ValueError(f"unknown event type(s): {', '.join(unknown)}")
    if WEBHOOK_TEST in value:
        raise ValueError("webhook.test is sent only by POST /v1/webhook-endpoints/{id}/test")
    return list(dict.fromkeys(value))


def _printable(value: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL; other control characters have no business in a description.
    if value is not None and any((ord(c) < 0x20 and c not in "\t\n") or c == "\x7f" for c in value):
        raise ValueError("must not contain control characters")
    return value


class EndpointCreate(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", strict=True)

    url: str = Field(min_length=1, max_length=MAX_URL_LENGTH)
    events: list[str] = Field(default_factory=lambda: ["*"], max_length=50)
    description: str | None = Field(default=None, max_length=500)
    enabled: bool = True

    _events = field_validator("events")(_check_events)
    _description = field_validator("description")(_printable)


class EndpointUpdate(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", strict=True)

    url: str | None = Field(default=None, min_length=1, max_length=MAX_URL_LENGTH)
    events: list[str] | None = Field(default=None, max_length=50)
    description: str | None = Field(default=None, max_length=500)
    enabled: bool | None = None

    @field_validator("url", "events", "enabled", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Omitting a field keeps it; only the description can be cleared with null.
        if value is None:
            raise ValueError("must not be null")
        return value

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _check_events(value)

    _description = field_validator("description")(_printable)


class Replay(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    since: AwareDatetime
    status: Literal["failed", "all"] = "failed"

    @field_validator("since", mode="before")
    @classmethod
    def _rfc3339(cls, value: object) -> object:
        # Only RFC 3339 strings; pydantic would otherwise also accept a bare unix number.
        if not isinstance(value, str):
            raise ValueError("must be an RFC 3339 timestamp")
        return value

    @field_validator("since")
    @classmethod
    def _in_range(cls, value: datetime) -> datetime:
        # 0001-01-01T00:00:00+14:00 is valid RFC 3339 but has no UTC equivalent in Python's range.
        try:
            return value.astimezone(UTC)
        except OverflowError as exc:
            raise ValueError("is out of range") from exc


def url_problem(url: str, *, allow_http: bool, policy: AddressPolicy) -> str | None:
    """Why ``url`` cannot be a webhook endpoint, or None. Names are not resolved here: their addresses
    can change, so the connect-time guard is the one that counts (WHK-7)."""
    if any(c.isspace() or ord(c) < 0x20 for c in url):
        return "must not contain whitespace or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "must be an http or https URL"
    if parts.scheme == "http" and not allow_http:
        return "must use https"
    if not parts.hostname:
        return "must have a host"
    if parts.username is not None or parts.password is not None:
        return "must not contain credentials"
    if parts.fragment:
        return "must not contain a fragment"
    host = parts.hostname.lower()
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    reason = policy.refusal(host, host, parts.port or (443 if parts.scheme == "https" else 80))
    return f"points to {_article(reason)}" if reason is not None else None


def _article(reason: str) -> str:
    return reason if reason.startswith("a ") else f"a {reason}"
