"""The routes of reconciliation-svc's API role (every one behind the gateway's internal token)."""

from __future__ import annotations

from aiohttp import web


def setup_routes(app: web.Application) -> None:
    """The admin API (``/admin/reconciliation/*``) is added here."""
    del app
