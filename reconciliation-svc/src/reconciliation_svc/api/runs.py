"""Handlers of ``/admin/reconciliation/runs``: queue a run, list runs, read one (progress, summary)."""

from __future__ import annotations

from aiohttp import web
from billing_runtime.errors import ProblemError
from billing_runtime.paging import MAX_OFFSET
from billing_runtime.problems import read_json_object
from billing_runtime.validation import parse, query_choice, query_int, query_text
from sqlalchemy.ext.asyncio import AsyncEngine

from reconciliation_svc.api.run_schemas import (
    RunCreate,
    field_problem,
    run_json,
    valid_object_id,
)
from reconciliation_svc.db import runs as run_queries
from reconciliation_svc.db import statements as statement_queries
from reconciliation_svc.domain.runs import RUN_STATES
from reconciliation_svc.keys import plumbing_key, run_worker_key


def engine_of(request: web.Request) -> AsyncEngine:
    engine = request.app[plumbing_key].engine
    assert engine is not None
    return engine


async def create(request: web.Request) -> web.Response:
    body = parse(RunCreate, await read_json_object(request))
    problem = body.period_problem()
    if problem is not None:
        raise field_problem(*problem)
    engine = engine_of(request)
    async with engine.begin() as conn:
        provider = await run_queries.provider_of_account(conn, body.account_id)
        if body.statement_id is not None:
            statement = await statement_queries.get_statement(conn, body.statement_id)
            if statement is None:
                raise field_problem("statement_id", "no such statement")
            if statement.account_id != body.account_id:
                raise field_problem("statement_id", f"is a statement of account {statement.account_id}")
            provider = statement.provider
        run, _new = await run_queries.queue_run(
            conn,
            run_queries.NewRun(
                body.account_id,
                body.period,
                "admin",
                body.started_by,
                provider=provider,
                statement_id=body.statement_id,
            ),
        )
    worker = request.app.get(run_worker_key)
    if worker is not None:
        worker.wake()
    return web.json_response(run_json(run), status=202)


async def list_(request: web.Request) -> web.Response:
    q = request.query
    limit = query_int(q.get("limit"), "limit", default=20, lo=1, hi=100)
    offset = query_int(q.get("offset"), "offset", default=0, lo=0, hi=MAX_OFFSET)
    state = query_choice(q.get("state"), "state", tuple(sorted(RUN_STATES)))
    account_id = query_text(q.get("account_id"), "account_id", max_length=40)
    async with engine_of(request).connect() as conn:
        rows = await run_queries.list_runs(conn, limit=limit + 1, offset=offset, state=state, account_id=account_id)
    return web.json_response(
        {
            "object": "list",
            "data": [run_json(r) for r in rows[:limit]],
            "limit": limit,
            "offset": offset,
            "has_more": len(rows) > limit,
        }
    )


async def get(request: web.Request) -> web.Response:
    run_id = request.match_info["run_id"]
    run = None
    if valid_object_id(run_id):
        async with engine_of(request).connect() as conn:
            run = await run_queries.get_run(conn, run_id)
    if run is None:
        raise ProblemError(404, "not_found", "No such reconciliation run.")
    return web.json_response(run_json(run))
