"""The routes of reconciliation-svc's API role (every one behind the gateway's internal token)."""

from __future__ import annotations

from aiohttp import web

from reconciliation_svc.api import discrepancies, janitor

PREFIX = "/admin/reconciliation"


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get(f"{PREFIX}/discrepancies", discrepancies.list_)
    r.add_get(PREFIX + "/discrepancies/{discrepancy_id}", discrepancies.get)
    r.add_post(PREFIX + "/discrepancies/{discrepancy_id}/resolve", discrepancies.resolve)
    r.add_post(PREFIX + "/discrepancies/{discrepancy_id}/ignore", discrepancies.ignore)
    r.add_post(f"{PREFIX}/janitor/run", janitor.run)
