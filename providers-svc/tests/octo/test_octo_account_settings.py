"""An Octo account's settings and credentials as the admin API checks them: the signature formula and
auto_capture have documented defaults and refuse anything else; the shop id is Octo's number; the
unique_key reading needs the key Octo issues for it, a credential of its own (sealed, never shown)."""

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


class TestUniqueKey:
    async def test_the_unique_key_reading_needs_its_own_key(self, make_client: Any, admin: dict[str, str]) -> None:
        client = await make_client()
        body = {**ACCOUNT, "settings": {"signature_formula": "unique_key"}}
        resp = await client.post("/admin/provider-accounts", json=body, headers=admin)
        assert resp.status == 422
        [error] = (await resp.json())["errors"]
        assert error["field"] == "credentials.unique_key"
        assert "signature_formula is unique_key" in error["message"]

    async def test_given_it_is_sealed_and_only_named(
        self, make_client: Any, admin: dict[str, str], engine: Any
    ) -> None:
        client = await make_client()
        credentials = {**ACCOUNT["credentials"], "unique_key": "octo-team-unique-key"}  # type: ignore[dict-item]
        body = {**ACCOUNT, "credentials": credentials, "settings": {"signature_formula": "unique_key"}}
        resp = await client.post("/admin/provider-accounts", json=body, headers=admin)
        assert resp.status == 201, await resp.text()
        created = await resp.json()
        assert created["credentials_set"] == ["secret", "shop_id", "unique_key"]
        assert "octo-team-unique-key" not in await resp.text()
        shown = await client.get(f"/admin/provider-accounts/{created['id']}", headers=admin)
        assert "octo-team-unique-key" not in await shown.text()
        async with engine.connect() as conn:
            stored = await conn.exec_driver_sql("SELECT credentials_ciphertext FROM provider_accounts")
            assert "octo-team-unique-key" not in str(stored.all())

    async def test_the_documented_reading_does_not_need_it(self, make_client: Any, admin: dict[str, str]) -> None:
        client = await make_client()
        resp = await client.post("/admin/provider-accounts", json=ACCOUNT, headers=admin)
        assert resp.status == 201
        assert (await resp.json())["credentials_set"] == ["secret", "shop_id"]

    async def test_switching_to_the_reading_needs_the_key_unless_given_with_it(
        self, make_client: Any, admin: dict[str, str]
    ) -> None:
        client = await make_client()
        account_id = (await (await client.post("/admin/provider-accounts", json=ACCOUNT, headers=admin)).json())["id"]
        path = f"/admin/provider-accounts/{account_id}"
        switch = {"settings": {"signature_formula": "unique_key"}}
        refused = await client.patch(path, json=switch, headers=admin)
        assert refused.status == 422
        assert [e["field"] for e in (await refused.json())["errors"]] == ["credentials.unique_key"]
        with_key = await client.patch(path, json={**switch, "credentials": {"unique_key": "k-1"}}, headers=admin)
        assert with_key.status == 200, await with_key.text()
        assert (await with_key.json())["settings"]["signature_formula"] == "unique_key"

    async def test_another_provider_has_no_such_credential(self, make_client: Any, admin: dict[str, str]) -> None:
        client = await make_client()
        body = {
            "provider": "click",
            "name": "Shop Click",
            "environment": "test",
            "currencies": ["UZS"],
            "credentials": {
                "service_id": "1", "merchant_id": "2", "merchant_user_id": "3", "secret_key": "s", "unique_key": "k",
            },
        }  # fmt: skip
        resp = await client.post("/admin/provider-accounts", json=body, headers=admin)
        assert resp.status == 422
        assert "credentials.unique_key" in [e["field"] for e in (await resp.json())["errors"]]
