"""Every typed application key of reconciliation-svc."""

from __future__ import annotations

from aiohttp import web
from billing_runtime.plumbing import Plumbing

from reconciliation_svc.metrics import ReconciliationMetrics
from reconciliation_svc.settings import Settings

settings_key = web.AppKey("settings", Settings)
plumbing_key = web.AppKey("plumbing", Plumbing)
metrics_key = web.AppKey("reconciliation_metrics", ReconciliationMetrics)
