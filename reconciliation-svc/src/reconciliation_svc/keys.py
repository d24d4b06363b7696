"""Every typed application key of reconciliation-svc."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from billing_runtime.plumbing import Plumbing

from reconciliation_svc.metrics import ReconciliationMetrics
from reconciliation_svc.services.janitor import Janitor
from reconciliation_svc.services.uow import ReconUnitOfWork
from reconciliation_svc.settings import Settings

settings_key = web.AppKey("settings", Settings)
plumbing_key = web.AppKey("plumbing", Plumbing)
metrics_key = web.AppKey("reconciliation_metrics", ReconciliationMetrics)
uow_key: web.AppKey[Callable[[], ReconUnitOfWork]] = web.AppKey("uow")
janitor_key = web.AppKey("janitor", Janitor)
