"""Input of the runs and statements admin API (422 naming every bad field) and the JSON it answers."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from billing_contracts.problems import FieldError
from billing_runtime.problems import validation_error
from pydantic import BaseModel, ConfigDict, Field, field_validator

from reconciliation_svc.api.responses import ReconciliationRun, RunError, RunProgress, Statement
from reconciliation_svc.db.run_models import RunRow, StatementRow
from reconciliation_svc.domain.discrepancies import DISCREPANCY_KINDS
from reconciliation_svc.domain.periods import MAX_PERIOD_DAYS, Period

# A provider account id (``pac_...``) or ``sandbox``: what providers-svc names accounts with.
ACCOUNT_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_OBJECT_ID = re.compile(r"^[a-z]{2,8}_[0-9a-z]{1,40}$")
MATCHED_KINDS = sorted(DISCREPANCY_KINDS - {"anomaly"})


def valid_object_id(raw: str) -> bool:
    """An id that cannot exist answers 404 without a query."""
    return bool(_OBJECT_ID.fullmatch(raw))


def valid_account_id(raw: str) -> bool:
    return bool(ACCOUNT_ID.fullmatch(raw))


def _date(value: object) -> date:
    # Dates only (YYYY-MM-DD): a period is whole UTC days, never a time a client would have to align.
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise ValueError("must be a date YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError("must be a date YYYY-MM-DD") from None


class RunCreate(BaseModel):
    """``POST /admin/reconciliation/runs``."""

    model_config = ConfigDict(defer_build=True, extra="forbid", populate_by_name=True)

    account_id: str = Field(pattern=ACCOUNT_ID.pattern)
    first_day: date = Field(alias="from")
    last_day: date = Field(alias="to")
    statement_id: str | None = Field(default=None, pattern=_OBJECT_ID.pattern)
    started_by: str = Field(default="admin", min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")

    _dates = field_validator("first_day", "last_day", mode="before")(_date)

    def period_problem(self) -> tuple[str, str] | None:
        """The field and what is wrong with the period, if anything."""
        if self.last_day < self.first_day:
            return "to", "must not be before from"
        if (self.last_day - self.first_day).days >= MAX_PERIOD_DAYS:
            return "to", f"a run covers at most {MAX_PERIOD_DAYS} days"
        if self.last_day > datetime.now(UTC).date():
            return "to", "must not be after today (UTC)"
        return None

    @property
    def period(self) -> Period:
        return Period(self.first_day, self.last_day)


def field_problem(field: str, message: str) -> Exception:
    return validation_error([FieldError(field=field, message=message)], f"{field}: {message}")


def run_json(run: RunRow) -> dict[str, Any]:
    summary = {kind: int((run.summary or {}).get(kind, 0)) for kind in MATCHED_KINDS}
    return ReconciliationRun(
        id=run.id,
        account_id=run.account_id,
        provider=run.provider,
        first_day=run.period_from,
        last_day=run.period_to,
        statement_id=run.statement_id,
        source="statement" if run.statement_id else "provider",
        trigger=run.trigger,
        started_by=run.started_by,
        state=run.state,
        progress=RunProgress(
            lines_read=run.lines_read, matched=run.matched, discrepancies_found=run.discrepancies_found
        ),
        summary=summary,
        error=RunError(code=run.error_code, message=run.error) if run.error_code else None,
        attempts=run.attempts,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        updated_at=run.updated_at,
    ).model_dump(mode="json", by_alias=True)


def statement_json(statement: StatementRow) -> dict[str, Any]:
    return Statement(
        id=statement.id,
        provider=statement.provider,
        account_id=statement.account_id,
        origin=statement.origin,
        filename=statement.filename,
        sha256=statement.sha256,
        records=statement.records,
        skipped=statement.skipped,
        first_at=statement.first_at,
        last_at=statement.last_at,
        created_by=statement.created_by,
        created_at=statement.created_at,
    ).model_dump(mode="json")
