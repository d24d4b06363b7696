"""The gateway's side of the provider accounts API: the admin token is required, the request goes to
providers-svc unchanged with an internal token, and a tenant's routes name the tenant and its mode (an
unknown tenant is a 404 here, before providers-svc is asked)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from .support import FakeUpstream, Gateway, Reply, admin_headers, bearer, problem

pytestmark = pytest.mark.postgres


class TestAccountRoutes:
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("POST", "/admin/provider-accounts"),
            ("GET", "/admin/provider-accounts?limit=5"),
            ("GET", "/admin/provider-accounts/pac_1"),
            ("PATCH", "/admin/provider-accounts/pac_1"),
            ("DELETE", "/admin/provider-accounts/pac_1"),
        ],
    )
    async def test_forwarded_to_providers_with_a_platform_token(
        self, gateway: Gateway, providers: FakeUpstream, method: str, path: str
    ) -> None:
        providers.reply(method, path.partition("?")[0], Reply(201, b'{"id": "pac_1"}'))
        resp = await gateway.client.request(method, path, json={"name": "x"}, headers=admin_headers())
        assert resp.status == 201
        assert await resp.json() == {"id": "pac_1"}
        received = providers.last
        assert received.path_qs == path
        caller = received.caller("providers")
        assert (caller.service, caller.tenant_id) == ("gateway", None)
        assert "Authorization" not in received.headers  # the admin token stays here

    async def test_the_admin_token_is_required(self, gateway: Gateway, providers: FakeUpstream) -> None:
        _, token = await gateway.tenant_with_token()
        assert (await gateway.client.get("/admin/provider-accounts")).status == 401
        assert (await gateway.client.get("/admin/provider-accounts", headers=bearer(token))).status == 403
        assert providers.received == []

    async def test_an_encoded_slash_never_reaches_providers(self, gateway: Gateway, providers: FakeUpstream) -> None:
        resp = await gateway.client.get(
            "/admin/provider-accounts/..%2F..%2Finternal%2Fproviders", headers=admin_headers()
        )
        assert resp.status == 404
        assert providers.received == []


class TestTenantRoutes:
    @pytest.mark.parametrize("livemode", [False, True])
    async def test_the_tenant_and_its_mode_travel_in_the_token(
        self, gateway: Gateway, providers: FakeUpstream, livemode: bool
    ) -> None:
        created = await gateway.client.post(
            "/admin/tenants",
            json={"app_name": "shop-1", "display_name": "Shop", "livemode": livemode},
            headers=admin_headers(),
        )
        tenant: dict[str, Any] = await created.json()
        path = f"/admin/tenants/{tenant['id']}/provider-accounts/payme"
        resp = await gateway.client.put(path, json={"provider_account_id": "pac_1"}, headers=admin_headers())
        assert resp.status == 200
        caller = providers.last.caller("providers")
        assert (caller.service, caller.tenant_id, caller.livemode) == ("gateway", tenant["id"], livemode)
        assert providers.last.path_qs == path

    async def test_an_unknown_tenant_is_404_here(self, gateway: Gateway, providers: FakeUpstream) -> None:
        resp = await gateway.client.get(
            "/admin/tenants/ten_00000000000000000000000000/provider-accounts", headers=admin_headers()
        )
        assert resp.status == 404
        assert providers.received == []

    async def test_providers_too_slow_is_a_503(
        self, make_gateway: Callable[..., Awaitable[Gateway]], providers: FakeUpstream
    ) -> None:
        gateway = await make_gateway(upstream_timeout=0.3)
        providers.reply("GET", "/admin/provider-accounts", Reply(delay=5))
        resp = await gateway.client.get("/admin/provider-accounts", headers=admin_headers())
        await problem(resp, 503, "upstream_unavailable")
