"""The Stripe projections' routes: ``/v1/stripe/...`` is a tenant route to providers-svc (the tenant
and its mode in the internal token), ``/admin/stripe/...`` the operator's (admin token; a token naming
no tenant)."""

from __future__ import annotations

from typing import Any

import pytest

from .support import FakeUpstream, Gateway, Reply, admin_headers, bearer

pytestmark = pytest.mark.postgres


class TestTenantRoute:
    @pytest.mark.parametrize(
        "path",
        [
            "/v1/stripe/charges",
            "/v1/stripe/charges?limit=5&customer=cus_1&created%5Bgte%5D=1764936000",
            "/v1/stripe/charges/ch_3Qx",
            "/v1/stripe/subscriptions?starting_after=sub_1",
        ],
    )
    async def test_forwarded_to_providers_naming_the_tenant(
        self, gateway: Gateway, payments: FakeUpstream, providers: FakeUpstream, path: str
    ) -> None:
        tenant, token = await gateway.tenant_with_token()
        resp = await gateway.client.get(path, headers=bearer(token))
        assert resp.status == 200
        received = providers.last
        assert received.path_qs == path
        caller = received.caller("providers")
        assert (caller.service, caller.tenant_id, caller.livemode) == ("gateway", tenant["id"], False)
        assert "Authorization" not in received.headers
        assert payments.received == []

    async def test_a_live_tenant_reads_as_live(self, gateway: Gateway, providers: FakeUpstream) -> None:
        created = await gateway.client.post(
            "/admin/tenants",
            json={"app_name": "live-1", "display_name": "Live", "livemode": True},
            headers=admin_headers(),
        )
        tenant: dict[str, Any] = await created.json()
        token = await gateway.token("live-1", tenant["secret"])
        assert (await gateway.client.get("/v1/stripe/charges", headers=bearer(token))).status == 200
        assert providers.last.caller("providers").livemode is True

    async def test_a_tenant_token_is_required(self, gateway: Gateway, providers: FakeUpstream) -> None:
        assert (await gateway.client.get("/v1/stripe/charges")).status == 401
        assert (await gateway.client.get("/v1/stripe/charges", headers=admin_headers())).status == 401
        assert providers.received == []

    async def test_upstream_problems_come_back_unchanged(self, gateway: Gateway, providers: FakeUpstream) -> None:
        body = b'{"type":"about:blank","title":"Not Found","status":404,"code":"not_found","detail":"No such charge"}'
        providers.reply(
            "GET", "/v1/stripe/charges/ch_x", Reply(404, body, headers={"Content-Type": "application/problem+json"})
        )
        _, token = await gateway.tenant_with_token()
        resp = await gateway.client.get("/v1/stripe/charges/ch_x", headers=bearer(token))
        assert (resp.status, await resp.read(), resp.content_type) == (404, body, "application/problem+json")


class TestAdminRoute:
    @pytest.mark.parametrize(
        "path",
        ["/admin/stripe/charges?tenant=ten_1&account=pac_1", "/admin/stripe/invoices/in_1Qx"],
    )
    async def test_forwarded_with_a_platform_token(self, gateway: Gateway, providers: FakeUpstream, path: str) -> None:
        resp = await gateway.client.get(path, headers=admin_headers())
        assert resp.status == 200
        received = providers.last
        assert received.path_qs == path
        caller = received.caller("providers")
        assert (caller.service, caller.tenant_id) == ("gateway", None)
        assert "Authorization" not in received.headers

    async def test_the_admin_token_is_required(self, gateway: Gateway, providers: FakeUpstream) -> None:
        _, token = await gateway.tenant_with_token()
        assert (await gateway.client.get("/admin/stripe/charges")).status == 401
        assert (await gateway.client.get("/admin/stripe/charges", headers=bearer(token))).status == 403
        assert providers.received == []

    async def test_only_reads(self, gateway: Gateway, providers: FakeUpstream) -> None:
        resp = await gateway.client.post("/admin/stripe/charges", json={}, headers=admin_headers())
        assert resp.status == 405
        assert providers.received == []
