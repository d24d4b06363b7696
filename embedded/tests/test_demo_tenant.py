"""Taking over a ``demo-shop`` tenant the secrets file does not know: found however deep the tenant list
is, by cursor (the list's offset stops at 10,000), against a fake gateway's admin API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from billing_embedded.demo_tenant import ensure_demo_tenant

# Newest first, as the gateway lists them; the demo tenant is the oldest, on the third page of 100.
TENANTS = [{"id": f"ten_{n:026d}", "app_name": f"shop-{n}", "livemode": False} for n in range(250, 0, -1)]
TENANTS.append({"id": "ten_" + "0" * 26, "app_name": "demo-shop", "livemode": False})


def _gateway(queries: list[dict[str, str]]) -> web.Application:
    async def create(request: web.Request) -> web.Response:
        return web.json_response({"code": "app_name_taken"}, status=409)

    async def list_(request: web.Request) -> web.Response:
        queries.append(dict(request.query))
        if "offset" in request.query:
            return web.json_response({"code": "validation_error"}, status=422)
        limit = int(request.query["limit"])
        after = request.query.get("starting_after")
        start = next(i for i, t in enumerate(TENANTS) if t["id"] == after) + 1 if after else 0
        page = TENANTS[start : start + limit]
        return web.json_response({"data": page, "has_more": start + limit < len(TENANTS)})

    async def rotate(request: web.Request) -> web.Response:
        return web.json_response({"id": request.match_info["id"], "app_name": "demo-shop", "secret": "new-secret"})

    async def patch(request: web.Request) -> web.Response:
        return web.json_response({"id": request.match_info["id"]})

    app = web.Application()
    app.router.add_post("/admin/tenants", create)
    app.router.add_get("/admin/tenants", list_)
    app.router.add_post("/admin/tenants/{id}/rotate-secret", rotate)
    app.router.add_patch("/admin/tenants/{id}", patch)
    return app


async def test_a_demo_tenant_deep_in_the_list_is_found_by_cursor(aiohttp_server: Any, tmp_path: Path) -> None:
    queries: list[dict[str, str]] = []
    server = await aiohttp_server(_gateway(queries))
    async with aiohttp.ClientSession() as session:
        tenant = await ensure_demo_tenant(
            session,
            gateway_url=str(server.make_url("")).rstrip("/"),
            admin_token="t" * 32,
            data_dir=tmp_path,
            origin="http://127.0.0.1:8090",
        )
    assert (tenant.tenant_id, tenant.secret) == ("ten_" + "0" * 26, "new-secret")
    assert queries == [
        {"limit": "100"},
        {"limit": "100", "starting_after": TENANTS[99]["id"]},
        {"limit": "100", "starting_after": TENANTS[199]["id"]},
    ]
