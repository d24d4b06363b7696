"""providers-svc accepts internal tokens only from the services allowed to call it (payments-svc,
and the gateway), signed with its own key: not from the dispatcher, nor anyone holding another key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


class TestInternalCallers:
    @pytest.mark.parametrize("issuer", ["payments", "gateway"])
    async def test_allowed_issuers_are_accepted(
        self, make_client: Any, internal_headers: Callable[..., dict[str, str]], issuer: str
    ) -> None:
        client = await make_client()
        assert (await client.get("/internal/providers", headers=internal_headers(issuer=issuer))).status == 200

    @pytest.mark.parametrize("issuer", ["webhooks", "providers", "checkout", "Payments", ""])
    async def test_other_issuers_are_refused_with_the_right_key(
        self, make_client: Any, internal_headers: Callable[..., dict[str, str]], issuer: str
    ) -> None:
        client = await make_client()
        response = await client.get("/internal/providers", headers=internal_headers(issuer=issuer))
        assert response.status == 401
        assert (await response.json())["code"] == "unauthorized"
