"""The admin operations of reconciliation-svc (every route of ``api/routes.py`` and ``run_wiring.py``),
served through the gateway's ``/admin/reconciliation/*`` and declared for the OpenAPI document."""

from __future__ import annotations

from billing_contracts.openapi import Auth, Operation, Reply, path_param, query_choice, query_int, query_text
from billing_runtime.paging import MAX_OFFSET

from reconciliation_svc.api.responses import (
    DiscrepancyDetail,
    DiscrepancyList,
    JanitorRun,
    ReconciliationRun,
    ReconciliationRunList,
    Statement,
)
from reconciliation_svc.api.routes import PREFIX
from reconciliation_svc.api.run_schemas import RunCreate
from reconciliation_svc.api.schemas import IgnoreBody, ResolveBody
from reconciliation_svc.domain.discrepancies import DISCREPANCY_KINDS, DISCREPANCY_STATES
from reconciliation_svc.domain.runs import RUN_STATES
from reconciliation_svc.domain.settlement_csv import FORMATS

TAG = "Reconciliation"
_ID = "^[a-z]{2,8}_[0-9a-z]{1,40}$"
DISCREPANCY_ID = path_param("discrepancy_id", "The discrepancy's id (`dsc_…`).", pattern="^dsc_[0-9a-z]{26}$")
STATEMENT_UPLOAD = {
    "type": "object",
    "required": ["provider", "account_id", "file"],
    "properties": {
        "provider": {"type": "string", "enum": sorted(FORMATS)},
        "account_id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,40}$"},
        "created_by": {"type": "string"},
        "file": {"type": "string", "contentMediaType": "text/csv", "description": "The provider's settlement CSV."},
    },
}


def _state_change(action: str, summary: str, body: type[ResolveBody | IgnoreBody]) -> Operation:
    return Operation(
        "POST",
        PREFIX + "/discrepancies/{discrepancy_id}/" + action,
        summary,
        TAG,
        Auth.ADMIN,
        (Reply(200, "The discrepancy with its changes.", DiscrepancyDetail),),
        f"{action}Discrepancy",
        params=(DISCREPANCY_ID,),
        body=body,
        errors=(409,),
    )


OPERATIONS = (
    Operation(
        "GET",
        PREFIX + "/discrepancies",
        "List discrepancies",
        TAG,
        Auth.ADMIN,
        (Reply(200, "A page of discrepancies.", DiscrepancyList),),
        "listDiscrepancies",
        params=(
            query_choice("kind", DISCREPANCY_KINDS),
            query_text("provider", max_length=32),
            query_choice("state", DISCREPANCY_STATES),
            query_text("tenant_id", max_length=40),
            query_int("limit", "Page size.", default=20, lo=1, hi=100),
            query_text(
                "starting_after", "After this discrepancy (an id).", max_length=30, pattern="^dsc_[0-9a-z]{26}$"
            ),
        ),
    ),
    Operation(
        "GET",
        PREFIX + "/discrepancies/{discrepancy_id}",
        "Retrieve a discrepancy",
        TAG,
        Auth.ADMIN,
        (Reply(200, "The discrepancy with its changes.", DiscrepancyDetail),),
        "getDiscrepancy",
        params=(DISCREPANCY_ID,),
    ),
    _state_change("resolve", "Mark a discrepancy resolved", ResolveBody),
    _state_change("ignore", "Ignore a discrepancy (with a reason)", IgnoreBody),
    Operation(
        "POST",
        PREFIX + "/janitor/run",
        "Run the janitor's checks once, now",
        TAG,
        Auth.ADMIN,
        (Reply(200, "What was checked and healed.", JanitorRun),),
        "runJanitor",
    ),
    Operation(
        "POST",
        PREFIX + "/runs",
        "Start a reconciliation run",
        TAG,
        Auth.ADMIN,
        (Reply(202, "The run, queued.", ReconciliationRun),),
        "createReconciliationRun",
        body=RunCreate,
        errors=(409,),
    ),
    Operation(
        "GET",
        PREFIX + "/runs",
        "List reconciliation runs",
        TAG,
        Auth.ADMIN,
        (Reply(200, "A page of runs, newest first.", ReconciliationRunList),),
        "listReconciliationRuns",
        params=(
            query_int("limit", "Page size.", default=20, lo=1, hi=100),
            query_int("offset", "Rows to skip.", default=0, lo=0, hi=MAX_OFFSET),
            query_choice("state", RUN_STATES),
            query_text("account_id", max_length=40),
        ),
    ),
    Operation(
        "GET",
        PREFIX + "/runs/{run_id}",
        "Retrieve a reconciliation run",
        TAG,
        Auth.ADMIN,
        (Reply(200, "The run.", ReconciliationRun),),
        "getReconciliationRun",
        params=(path_param("run_id", "The run's id.", pattern=_ID),),
    ),
    Operation(
        "POST",
        PREFIX + "/statements",
        "Upload a provider's settlement file",
        TAG,
        Auth.ADMIN,
        (
            Reply(201, "The statement, imported.", Statement),
            Reply(200, "The same file was imported before: that statement.", Statement),
        ),
        "uploadStatement",
        body_schema=STATEMENT_UPLOAD,
        body_content_type="multipart/form-data",
        errors=(400, 415),
    ),
    Operation(
        "GET",
        PREFIX + "/statements/{statement_id}",
        "Retrieve a statement",
        TAG,
        Auth.ADMIN,
        (Reply(200, "The statement.", Statement),),
        "getStatement",
        params=(path_param("statement_id", "The statement's id.", pattern=_ID),),
    ),
)
