"""Wires the runs into an app: the admin routes of runs and statements (api role) and the worker's
scheduler and runner (worker role). Called once by ``create_app``."""

from __future__ import annotations

from collections.abc import Collection

from aiohttp import web
from billing_runtime.metrics import Metrics
from billing_runtime.plumbing import Plumbing

from reconciliation_svc.api import runs, statements
from reconciliation_svc.jobs.runs import RunWorker
from reconciliation_svc.keys import run_metrics_key, run_worker_key
from reconciliation_svc.run_metrics import RunMetrics
from reconciliation_svc.settings import Settings

PREFIX = "/admin/reconciliation"


def add_run_routes(app: web.Application) -> None:
    r = app.router
    r.add_post(f"{PREFIX}/runs", runs.create)
    r.add_get(f"{PREFIX}/runs", runs.list_)
    r.add_get(PREFIX + "/runs/{run_id}", runs.get)
    r.add_post(f"{PREFIX}/statements", statements.create)
    r.add_get(PREFIX + "/statements/{statement_id}", statements.get)


def setup_runs(
    app: web.Application, settings: Settings, plumbing: Plumbing, metrics: Metrics, roles: Collection[str]
) -> None:
    run_metrics = RunMetrics(metrics)
    app[run_metrics_key] = run_metrics
    if "api" in roles:
        add_run_routes(app)
    if "worker" in roles:
        worker = RunWorker(settings, plumbing, run_metrics)
        app[run_worker_key] = worker
        plumbing.add_task("runs", worker.run)
