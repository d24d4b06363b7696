"""A tenant's whole life through the gateway: registered, refused twice, its secret rotated without a
grace period, its token proxied with its identity, listed, and the gateway ready throughout."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from .support import FakeUpstream, admin_headers, bearer


class TestTenantLifecycle:
    async def test_tenant_lifecycle_and_proxying(
        self, make_gateway: Callable[..., Awaitable[Any]], payments: FakeUpstream
    ) -> None:
        client = (await make_gateway(secret_grace_period=0)).client

        resp = await client.post(
            "/admin/tenants", json={"app_name": "shop-1", "display_name": "S"}, headers=admin_headers()
        )
        assert resp.status == 201
        tenant = await resp.json()
        resp = await client.post(
            "/admin/tenants", json={"app_name": "shop-1", "display_name": "S"}, headers=admin_headers()
        )
        assert resp.status == 409

        resp = await client.post(f"/admin/tenants/{tenant['id']}/rotate-secret", headers=admin_headers())
        rotated = await resp.json()
        assert rotated["previous_secret_expires_at"].endswith("Z")
        old = await client.post("/v1/auth/token", json={"app_name": "shop-1", "secret": tenant["secret"]})
        assert old.status == 401
        new = await client.post("/v1/auth/token", json={"app_name": "shop-1", "secret": rotated["secret"]})
        assert new.status == 200
        token = (await new.json())["access_token"]

        resp = await client.get("/v1/payments?limit=1", headers=bearer(token))
        assert resp.status == 200
        assert payments.last.caller("payments").tenant_id == tenant["id"]

        listed = await (await client.get("/admin/tenants", headers=admin_headers())).json()
        assert [t["id"] for t in listed["data"]] == [tenant["id"]]
        assert (await client.get("/readyz", headers=admin_headers())).status == 200
