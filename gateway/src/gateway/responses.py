"""Response bodies of the gateway's own routes. Handlers serialise through them, and the OpenAPI
document is generated from them (api_operations.py), so the two cannot differ."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class _Response(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")


class Tenant(_Response):
    id: str
    object: Literal["tenant"] = "tenant"
    app_name: str
    display_name: str
    livemode: bool
    disabled: bool
    # The origins whose pages may frame this tenant's hosted checkout (the SDK's modal); none: no framing.
    allowed_origins: list[str]
    # While a rotated-out secret still works (its grace period), when it stops.
    previous_secret_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


class TenantWithSecret(Tenant):
    """The tenant as created or rotated: its new secret, shown this once."""

    secret: str


class TenantList(_Response):
    object: Literal["list"] = "list"
    data: list[Tenant]
    limit: int
    offset: int
    has_more: bool


class AccessToken(_Response):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 (the scheme's name, not a secret)
    expires_in: int


class Health(_Response):
    status: Literal["ok"] = "ok"


class Readiness(_Response):
    status: Literal["ok", "unavailable", "draining"]
    # Each dependency's state (absent while draining).
    checks: dict[str, Literal["ok", "unavailable"]] | None = None


class PlatformStatus(_Response):
    """``GET /admin/status``: each service's own status as it answered (its queues, dead letters,
    outbox, processes, janitors; see the gateway README), or ``{"reachable": false, "error"}``."""

    object: Literal["platform_status"] = "platform_status"
    generated_at: datetime
    mode: Literal["embedded", "distributed"] | None
    services: dict[str, dict[str, Any]]
