"""payments-svc accepts internal tokens only from the gateway, signed with payments-svc's own key: a
token from providers-svc or the dispatcher is refused even when signed with the right key, and one
signed with providers-svc's key (which payments-svc itself holds to call it) is refused too."""

from __future__ import annotations

from typing import Any

import pytest
from billing_runtime.internal_auth import INTERNAL_HEADER, sign_internal

# The conftest settings' keys.
INTERNAL_SECRET = "test-internal-secret-0123456789abcdef"
PROVIDERS_INTERNAL_SECRET = "test-providers-internal-secret-0123456789"


def _token(secret: str, issuer: str) -> dict[str, str]:
    return {INTERNAL_HEADER: sign_internal(secret, issuer=issuer, audience="payments", tenant_id="ten_a")}


class TestInternalCallers:
    async def test_the_gateway_is_accepted(self, client: Any) -> None:
        assert (await client.get("/v1/payments", headers=_token(INTERNAL_SECRET, "gateway"))).status == 200

    @pytest.mark.parametrize("issuer", ["providers", "webhooks", "payments", "checkout"])
    async def test_other_issuers_are_refused(self, client: Any, issuer: str) -> None:
        response = await client.get("/v1/payments", headers=_token(INTERNAL_SECRET, issuer))
        assert response.status == 401
        assert (await response.json())["code"] == "unauthorized"

    async def test_another_services_key_is_refused(self, client: Any) -> None:
        response = await client.get("/v1/payments", headers=_token(PROVIDERS_INTERNAL_SECRET, "gateway"))
        assert response.status == 401
