"""RFC 9457 problem details, the body of every 4xx/5xx the public API returns."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class FieldError(BaseModel):
    """One invalid field of a 422."""

    # Built on first use, as the contract models are (billing_contracts.config).
    model_config = ConfigDict(defer_build=True)

    field: str
    message: str


class ProblemDetails(BaseModel):
    """``application/problem+json`` body. ``code`` is the stable, machine-readable part."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    type: str = "about:blank"
    title: str
    status: int
    code: str
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None
    request_id: str | None = None
