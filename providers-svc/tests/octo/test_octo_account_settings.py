"""An Octo account's settings and credentials as the admin API checks them: the signature formula and
auto_capture have documented defaults and refuse anything else; the shop id is Octo's number."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.postgres

ACCOUNT = {
    "provider": "octo",
    "name": "Shop Octo",
    "environment": "test",
    "currencies": ["UZS"],
    "credentials": {"shop_id": "27", "secret": "octo-secret-value"},
}


async def test_defaults(make_client: Any, admin: dict[str, str]) -> None:
    client = await make_client()
    resp = await client.post("/admin/provider-accounts", json=ACCOUNT, headers=admin)
    assert resp.status == 201
    assert (await resp.json())["settings"] == {
        "api_base": "https://secure.octo.uz",
        "signature_formula": "documented",
        "auto_capture": "true",
    }
    assert "octo-secret-value" not in await resp.text()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"settings": {"signature_formula": "md5"}}, "settings.signature_formula"),
        ({"settings": {"auto_capture": "yes"}}, "settings.auto_capture"),
        ({"credentials": {"shop_id": "shop-27", "secret": "s"}}, "credentials.shop_id"),
    ],
)
async def test_refused(make_client: Any, admin: dict[str, str], change: dict[str, Any], field: str) -> None:
    client = await make_client()
    resp = await client.post("/admin/provider-accounts", json={**ACCOUNT, **change}, headers=admin)
    assert resp.status == 422
    assert field in [e["field"] for e in (await resp.json())["errors"]]
