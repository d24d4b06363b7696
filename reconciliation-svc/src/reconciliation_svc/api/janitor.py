"""``POST /admin/reconciliation/janitor/run``: one janitor pass now, its counts."""

from __future__ import annotations

from aiohttp import web

from reconciliation_svc.keys import janitor_key


async def run(request: web.Request) -> web.Response:
    done = await request.app[janitor_key].run_once()
    return web.json_response(done.as_json())
