"""``GET /v1/providers`` (an extension beyond API.md) is a tenant route to providers-svc, naming the
tenant and its mode in the internal token."""

from __future__ import annotations

import pytest

from .support import FakeUpstream, Gateway, bearer

pytestmark = pytest.mark.postgres


class TestTenantProvidersRoute:
    async def test_forwarded_to_providers_naming_the_tenant(
        self, gateway: Gateway, payments: FakeUpstream, providers: FakeUpstream
    ) -> None:
        tenant, token = await gateway.tenant_with_token()
        resp = await gateway.client.get("/v1/providers", headers=bearer(token))
        assert resp.status == 200
        received = providers.last
        assert received.path_qs == "/v1/providers"
        caller = received.caller("providers")
        assert (caller.service, caller.tenant_id, caller.livemode) == ("gateway", tenant["id"], False)
        assert "Authorization" not in received.headers
        assert payments.received == []

    async def test_a_tenant_token_is_required(self, gateway: Gateway, providers: FakeUpstream) -> None:
        resp = await gateway.client.get("/v1/providers")
        assert resp.status == 401
        assert resp.content_type == "application/problem+json"
        assert providers.received == []
