"""Provider accounts through the gateway only, in both modes (API.md "Provider accounts"): the admin
creates an account (its credentials never come back), assigns it to a test tenant, cannot give it to a
live tenant, cannot delete it while assigned, and can once unassigned."""

from __future__ import annotations

import secrets
from typing import Any

import aiohttp
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

KEY = "payme-kassa-key-" + secrets.token_hex(8)


async def _call(
    http: aiohttp.ClientSession, platform: Any, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {platform.admin_token}"}
    async with http.request(method, platform.gateway_url + path, json=body, headers=headers) as r:
        text = await r.text()
        assert KEY not in text, "a credential came back"
        return r.status, await r.json(content_type=None)


async def test_an_account_is_created_assigned_and_deleted_through_the_gateway(
    platform: Any, http: aiohttp.ClientSession
) -> None:
    status, account = await _call(
        http,
        platform,
        "POST",
        "/admin/provider-accounts",
        {
            "provider": "payme",
            "name": "Kassa",
            "environment": "test",
            "currencies": ["UZS"],
            "credentials": {"merchant_id": "m-1", "key": KEY},
        },
    )
    assert status == 201, account
    assert account["credentials_set"] == ["key", "merchant_id"]
    tenants = {}
    for livemode in (False, True):
        status, tenants[livemode] = await _call(
            http,
            platform,
            "POST",
            "/admin/tenants",
            {"app_name": f"shop-{secrets.token_hex(4)}", "display_name": "Shop", "livemode": livemode},
        )
        assert status == 201
    test_path = f"/admin/tenants/{tenants[False]['id']}/provider-accounts"
    live_path = f"/admin/tenants/{tenants[True]['id']}/provider-accounts"

    status, body = await _call(http, platform, "PUT", f"{live_path}/payme", {"provider_account_id": account["id"]})
    assert status == 422 and body["code"] == "validation_error"
    status, assigned = await _call(http, platform, "PUT", f"{test_path}/payme", {"provider_account_id": account["id"]})
    assert status == 200 and assigned["provider_account"]["id"] == account["id"]
    status, listed = await _call(http, platform, "GET", test_path)
    assert [a["provider"] for a in listed["data"]] == ["payme"]

    status, body = await _call(http, platform, "DELETE", f"/admin/provider-accounts/{account['id']}")
    assert status == 409 and body["code"] == "account_assigned"
    assert (await _call(http, platform, "DELETE", f"{test_path}/payme"))[0] == 200
    assert (await _call(http, platform, "DELETE", f"/admin/provider-accounts/{account['id']}"))[0] == 200
    assert (await _call(http, platform, "GET", f"/admin/provider-accounts/{account['id']}"))[0] == 404
