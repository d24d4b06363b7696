"""The dispatcher accepts internal tokens only from the gateway, signed with its own key."""

from __future__ import annotations

from typing import Any

import pytest
from billing_runtime.internal_auth import INTERNAL_HEADER, sign_internal
from webhook_dispatcher.app import INTERNAL_AUDIENCE

INTERNAL_SECRET = "test-internal-secret-0123456789abcdef"  # the conftest settings' key


def _token(secret: str, issuer: str) -> dict[str, str]:
    return {INTERNAL_HEADER: sign_internal(secret, issuer=issuer, audience=INTERNAL_AUDIENCE, tenant_id="ten_a")}


class TestInternalCallers:
    async def test_the_gateway_is_accepted(self, client: Any) -> None:
        assert (await client.get("/v1/webhook-endpoints", headers=_token(INTERNAL_SECRET, "gateway"))).status == 200

    @pytest.mark.parametrize("issuer", ["providers", "payments", "webhooks"])
    async def test_other_issuers_are_refused(self, client: Any, issuer: str) -> None:
        response = await client.get("/v1/webhook-endpoints", headers=_token(INTERNAL_SECRET, issuer))
        assert response.status == 401
        assert (await response.json())["code"] == "unauthorized"

    async def test_another_services_key_is_refused(self, client: Any) -> None:
        other = "providers-internal-key-0123456789abcdef"
        response = await client.get("/v1/webhook-endpoints", headers=_token(other, "gateway"))
        assert response.status == 401
