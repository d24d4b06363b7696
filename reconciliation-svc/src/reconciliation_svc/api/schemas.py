"""HTTP shapes of the admin API: request bodies, query parsing, and the JSON of a discrepancy."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from billing_runtime.errors import ProblemError
from billing_runtime.validation import query_choice, query_int, query_text
from pydantic import BaseModel, ConfigDict, Field

from reconciliation_svc.api.responses import Discrepancy as DiscrepancyOut
from reconciliation_svc.api.responses import DiscrepancyChange, DiscrepancyDetail
from reconciliation_svc.db.discrepancies import DiscrepancyFilter
from reconciliation_svc.domain.discrepancies import DISCREPANCY_KINDS, DISCREPANCY_STATES, Change, Discrepancy

_DISCREPANCY_ID = re.compile(r"^dsc_[0-9a-z]{26}$")
_REASON_MAX = 1000


def valid_id(value: str) -> bool:
    return bool(_DISCREPANCY_ID.fullmatch(value))


class ResolveBody(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    reason: str | None = Field(default=None, min_length=1, max_length=_REASON_MAX)


class IgnoreBody(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    # Required: ignoring money that disagrees must say why (REC-5).
    reason: str = Field(min_length=1, max_length=_REASON_MAX)


def list_query(query: Mapping[str, str]) -> tuple[DiscrepancyFilter, int, str | None]:
    where = DiscrepancyFilter(
        kind=query_choice(query.get("kind"), "kind", DISCREPANCY_KINDS),
        provider=query_text(query.get("provider"), "provider", max_length=32),
        state=query_choice(query.get("state"), "state", DISCREPANCY_STATES),
        tenant_id=query_text(query.get("tenant_id"), "tenant_id", max_length=40),
    )
    limit = query_int(query.get("limit"), "limit", default=20, lo=1, hi=100)
    cursor = query.get("starting_after")
    if cursor is not None and not valid_id(cursor):
        raise ProblemError(422, "validation_error", "starting_after must be a discrepancy id")
    return where, limit, cursor


def _change(change: Change) -> DiscrepancyChange:
    return DiscrepancyChange(
        from_state=change.from_state,
        to_state=change.to_state,
        reason=change.reason,
        changed_by=change.changed_by,
        changed_at=change.changed_at,
    )


def discrepancy_json(d: Discrepancy, *, with_changes: bool = False) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "id": d.id,
        "kind": d.kind,
        "provider": d.provider,
        "account_id": d.account_id,
        "tenant_id": d.tenant_id,
        "payment_id": d.payment_id,
        "refund_id": d.refund_id,
        "provider_reference": d.provider_reference,
        "detail": d.detail,
        "ours": d.ours,
        "theirs": d.theirs,
        "state": d.state,
        "state_reason": d.state_reason,
        "changed_by": d.changed_by,
        "changed_at": d.changed_at,
        "run_id": d.run_id,
        "detected_at": d.detected_at,
        "updated_at": d.updated_at,
    }
    if with_changes:
        return DiscrepancyDetail(**fields, changes=[_change(c) for c in d.changes]).model_dump(mode="json")
    return DiscrepancyOut(**fields).model_dump(mode="json")
