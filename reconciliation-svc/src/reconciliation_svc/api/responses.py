"""Response bodies of the reconciliation admin API, for the OpenAPI document (api/openapi.py)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Response(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid", populate_by_name=True)


class DiscrepancyChange(_Response):
    from_state: str | None
    to_state: str
    reason: str | None
    changed_by: str | None
    changed_at: datetime | None


class Discrepancy(_Response):
    id: str
    object: Literal["discrepancy"] = "discrepancy"
    kind: str
    provider: str
    account_id: str | None
    tenant_id: str | None
    payment_id: str | None
    refund_id: str | None
    provider_reference: str | None
    detail: str
    # Our record and the provider's, as each said it (absent on the side that has none).
    ours: dict[str, Any] | None
    theirs: dict[str, Any] | None
    state: str
    state_reason: str | None
    changed_by: str | None
    changed_at: datetime | None
    run_id: str | None
    detected_at: datetime
    updated_at: datetime


class DiscrepancyDetail(Discrepancy):
    """A discrepancy with every change of its state."""

    changes: list[DiscrepancyChange]


class DiscrepancyList(_Response):
    object: Literal["list"] = "list"
    data: list[Discrepancy]
    limit: int
    has_more: bool


class RunProgress(_Response):
    lines_read: int
    matched: int
    discrepancies_found: int


class RunError(_Response):
    code: str
    message: str | None


class ReconciliationRun(_Response):
    id: str
    object: Literal["reconciliation_run"] = "reconciliation_run"
    account_id: str
    # None until the run has found the account's provider.
    provider: str | None
    first_day: date = Field(alias="from")
    last_day: date = Field(alias="to")
    statement_id: str | None
    source: Literal["statement", "provider"]
    trigger: str
    started_by: str
    state: str
    progress: RunProgress
    # Discrepancies found, per kind.
    summary: dict[str, int]
    error: RunError | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime


class ReconciliationRunList(_Response):
    object: Literal["list"] = "list"
    data: list[ReconciliationRun]
    limit: int
    offset: int
    has_more: bool


class Statement(_Response):
    id: str
    object: Literal["statement"] = "statement"
    provider: str
    account_id: str
    origin: str
    filename: str | None
    sha256: str
    records: int
    skipped: int
    first_at: datetime | None
    last_at: datetime | None
    created_by: str
    created_at: datetime


class JanitorRun(_Response):
    object: Literal["janitor_run"] = "janitor_run"
    checked: int
    healed: int
    # Checks by result.
    results: dict[str, int]
