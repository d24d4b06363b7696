"""Every typed application key of reconciliation-svc."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from billing_runtime.plumbing import Plumbing

from reconciliation_svc.jobs.runs import RunWorker
from reconciliation_svc.metrics import ReconciliationMetrics
from reconciliation_svc.run_metrics import RunMetrics
from reconciliation_svc.services.janitor import Janitor
from reconciliation_svc.services.uow import ReconUnitOfWork
from reconciliation_svc.settings import Settings

settings_key = web.AppKey("settings", Settings)
plumbing_key = web.AppKey("plumbing", Plumbing)
metrics_key = web.AppKey("reconciliation_metrics", ReconciliationMetrics)
uow_key: web.AppKey[Callable[[], ReconUnitOfWork]] = web.AppKey("uow")
janitor_key = web.AppKey("janitor", Janitor)
run_metrics_key = web.AppKey("run_metrics", RunMetrics)
run_worker_key = web.AppKey("run_worker", RunWorker)
