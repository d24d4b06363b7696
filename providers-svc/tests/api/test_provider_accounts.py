"""Provider accounts (API.md "Provider accounts") as the gateway calls them: created with their
credentials encrypted and never shown again, listed with cursors, changed field by field, deleted only
when unassigned, and assigned to a tenant only in its own mode."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from billing_runtime.key_ring import KeyRing, generate_key
from providers_svc.db.models import ProviderAccountRow
from pydantic import SecretStr, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

# The conftest's key (the app under test seals with it); these tests open what it sealed.
CREDENTIALS_KEYS = "dGVzdC1jcmVkZW50aWFscy1rZXktMDEyMzQ1Njc4OWE="
SECRETS = {"internal_secret": "test-internal-secret-0123456789abcdef", "sandbox_secret": "s" * 32}

pytestmark = pytest.mark.postgres

PAYME = {
    "provider": "payme",
    "name": "Shop One kassa",
    "environment": "test",
    "currencies": ["UZS"],
    "credentials": {"merchant_id": "5e730e8e0b852a417aa49ceb", "key": "payme-test-key-&secret"},
}
CLICK = {
    "provider": "click",
    "name": "Shop One Click",
    "environment": "production",
    "currencies": ["UZS"],
    "credentials": {"service_id": "101", "merchant_id": "202", "merchant_user_id": "303", "secret_key": "click-sec"},
}


def _payme(name: str) -> dict[str, Any]:
    """A Payme account of its own key (two accounts never share one: test_account_identity.py)."""
    return {**PAYME, "name": name, "credentials": {**PAYME["credentials"], "key": f"payme-key-{name}"}}


async def _create(client: Any, admin: dict[str, str], body: dict[str, Any]) -> Any:
    return await client.post("/admin/provider-accounts", json=body, headers=admin)


class TestCreate:
    async def test_credentials_are_encrypted_and_never_shown(
        self, client: Any, admin: dict[str, str], engine: AsyncEngine
    ) -> None:
        resp = await _create(client, admin, PAYME)
        assert resp.status == 201
        account = await resp.json()
        assert account["id"].startswith("pac_")
        assert account["object"] == "provider_account"
        assert account["credentials_set"] == ["key", "merchant_id"]
        assert account["settings"] == {
            "account_field": "order_id",
            "cancel_after_perform": "refund",
            "language": "ru",
        }  # defaults
        assert "payme-test-key" not in await resp.text()
        fetched = await client.get(f"/admin/provider-accounts/{account['id']}", headers=admin)
        assert "payme-test-key" not in await fetched.text()
        async with engine.connect() as conn:
            stored = (await conn.execute(select(ProviderAccountRow.credentials_ciphertext))).scalar_one()
        assert "payme-test-key" not in stored and "merchant_id" not in stored
        assert KeyRing(CREDENTIALS_KEYS).decrypt(stored) == (
            '{"key":"payme-test-key-&secret","merchant_id":"5e730e8e0b852a417aa49ceb"}'
        )

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"credentials": {"merchant_id": "m"}}, "credentials.key"),
            ({"credentials": {"merchant_id": "m", "key": ""}}, "credentials.key"),
            ({"credentials": {"merchant_id": "m", "key": 5}}, "credentials.key"),
            ({"credentials": {"merchant_id": "m", "key": "k", "extra": "x"}}, "credentials.extra"),
            ({"currencies": ["USD"]}, "currencies"),
            ({"currencies": ["uzs"]}, "currencies"),
            ({"currencies": []}, "currencies"),
            ({"settings": {"account_field": "Order Id"}}, "settings.account_field"),
            ({"settings": {"cancel_after_perform": "maybe"}}, "settings.cancel_after_perform"),
            ({"settings": {"color": "red"}}, "settings.color"),
            ({"environment": "staging"}, "environment"),
            ({"provider": "paypal"}, "provider"),
            ({"name": ""}, "name"),
        ],
    )
    async def test_a_bad_request_names_the_field_and_stores_nothing(
        self, client: Any, admin: dict[str, str], engine: AsyncEngine, change: dict[str, Any], field: str
    ) -> None:
        resp = await _create(client, admin, {**PAYME, **change})
        assert resp.status == 422
        body = await resp.json()
        assert body["code"] == "validation_error"
        assert field in [e["field"] for e in body["errors"]]
        assert "payme-test-key" not in await resp.text()
        async with engine.connect() as conn:
            assert (await conn.execute(select(ProviderAccountRow.id))).all() == []

    async def test_octo_takes_usd_and_stripe_its_settings(self, client: Any, admin: dict[str, str]) -> None:
        octo = {
            **PAYME,
            "provider": "octo",
            "currencies": ["UZS", "USD"],
            "credentials": {"shop_id": "1", "secret": "s"},
        }
        assert (await _create(client, admin, octo)).status == 201
        stripe = {
            **PAYME,
            "provider": "stripe",
            "currencies": ["EUR", "USD"],
            "credentials": {"secret_key": "sk_test_x", "webhook_secret": "whsec_x"},
            "settings": {"api_base": "http://127.0.0.1:8420", "flow": "payment_intent"},
        }
        resp = await _create(client, admin, stripe)
        assert resp.status == 201
        assert (await resp.json())["settings"] == {
            "api_base": "http://127.0.0.1:8420",
            "flow": "payment_intent",
            "capture_method": "automatic",
            "connected_account": "",
            "publishable_key": "",
        }

    @pytest.mark.parametrize(
        ("credentials", "given", "field"),
        [
            ({"secret_key": "pk_test_x", "webhook_secret": "whsec_x"}, {}, "credentials.secret_key"),
            ({"secret_key": "sk_test_x", "webhook_secret": "whsek_x"}, {}, "credentials.webhook_secret"),
            (
                {"secret_key": "sk_test_x", "webhook_secret": "whsec_x"},
                {"capture_method": "manuel"},
                "settings.capture_method",
            ),
            (
                {"secret_key": "sk_test_x", "webhook_secret": "whsec_x"},
                {"connected_account": "acc_1"},
                "settings.connected_account",
            ),
            (
                {"secret_key": "sk_test_x", "webhook_secret": "whsec_x"},
                {"publishable_key": "sk_test_1"},
                "settings.publishable_key",
            ),
            ({"secret_key": "sk_test_x", "webhook_secret": "whsec_x"}, {"flow": "checkout"}, "settings.flow"),
        ],
    )
    async def test_stripe_typos_are_refused(
        self, client: Any, admin: dict[str, str], credentials: dict[str, str], given: dict[str, str], field: str
    ) -> None:
        body = {**PAYME, "provider": "stripe", "currencies": ["USD"], "credentials": credentials, "settings": given}
        resp = await _create(client, admin, body)
        assert resp.status == 422
        assert field in [e["field"] for e in (await resp.json())["errors"]]

    @pytest.mark.parametrize(("environment", "key"), [("test", "sk_live_x"), ("production", "sk_test_x")])
    async def test_a_stripe_key_of_the_other_mode_is_refused(
        self, client: Any, admin: dict[str, str], environment: str, key: str
    ) -> None:
        """A live key on a test account would take real money for a test tenant (and the reverse)."""
        credentials = {"secret_key": key, "webhook_secret": "whsec_x"}
        body = {**PAYME, "provider": "stripe", "environment": environment, "currencies": ["USD"]}
        resp = await _create(client, admin, {**body, "credentials": credentials})
        assert resp.status == 422
        assert [e["field"] for e in (await resp.json())["errors"]] == ["credentials.secret_key"]
        assert key not in await resp.text()
        good = {"secret_key": "sk_test_x" if environment == "test" else "sk_live_x"}
        resp = await _create(client, admin, {**body, "credentials": {**credentials, **good}})
        assert resp.status == 201, await resp.text()
        patched = await client.patch(
            f"/admin/provider-accounts/{(await resp.json())['id']}",
            json={"credentials": {"secret_key": key}},
            headers=admin,
        )
        assert patched.status == 422

    async def test_stripe_connect_and_elements_settings(self, client: Any, admin: dict[str, str]) -> None:
        body = {
            **PAYME,
            "provider": "stripe",
            "currencies": ["USD"],
            "credentials": {"secret_key": "sk_test_abc", "webhook_secret": "whsec_abc"},
            "settings": {
                "connected_account": "acct_1AbC",
                "publishable_key": "pk_live_abc",
                "capture_method": "manual",
            },
        }
        resp = await _create(client, admin, body)
        assert resp.status == 201, await resp.text()
        settings = (await resp.json())["settings"]
        assert (settings["connected_account"], settings["capture_method"]) == ("acct_1AbC", "manual")


class TestOnlyTheGateway:
    async def test_payments_svc_cannot_administer_accounts(self, client: Any, internal_headers: Any) -> None:
        resp = await client.post("/admin/provider-accounts", json=PAYME, headers=internal_headers(None))
        assert resp.status == 403
        resp = await client.get("/admin/provider-accounts", headers=internal_headers(None))
        assert resp.status == 403

    async def test_no_internal_token_is_refused(self, client: Any) -> None:
        assert (await client.get("/admin/provider-accounts")).status == 401


class TestListAndUpdate:
    async def test_cursor_pages_newest_first(self, client: Any, admin: dict[str, str]) -> None:
        ids = [(await (await _create(client, admin, _payme(f"a{i}"))).json())["id"] for i in range(5)]
        page = await (await client.get("/admin/provider-accounts?limit=2", headers=admin)).json()
        assert [a["id"] for a in page["data"]] == ids[::-1][:2] and page["has_more"] is True
        after = page["data"][-1]["id"]
        rest = await (
            await client.get(f"/admin/provider-accounts?limit=10&starting_after={after}", headers=admin)
        ).json()
        assert [a["id"] for a in rest["data"]] == ids[::-1][2:] and rest["has_more"] is False
        clicks = await (await client.get("/admin/provider-accounts?provider=click", headers=admin)).json()
        assert clicks["data"] == []
        unknown = await client.get("/admin/provider-accounts?starting_after=pac_nope", headers=admin)
        assert unknown.status == 422

    async def test_credentials_are_replaced_field_by_field(
        self, client: Any, admin: dict[str, str], engine: AsyncEngine
    ) -> None:
        account = await (await _create(client, admin, PAYME)).json()
        resp = await client.patch(
            f"/admin/provider-accounts/{account['id']}",
            json={"name": "Renamed", "credentials": {"key": "rotated-key"}, "settings": {"account_field": "pay_id"}},
            headers=admin,
        )
        assert resp.status == 200
        updated = await resp.json()
        assert (updated["name"], updated["settings"], updated["credentials_set"]) == (
            "Renamed",
            {"account_field": "pay_id", "cancel_after_perform": "refund", "language": "ru"},
            ["key", "merchant_id"],
        )
        async with engine.connect() as conn:
            stored = (await conn.execute(select(ProviderAccountRow.credentials_ciphertext))).scalar_one()
        assert (
            KeyRing(CREDENTIALS_KEYS).decrypt(stored)
            == '{"key":"rotated-key","merchant_id":"5e730e8e0b852a417aa49ceb"}'
        )

    async def test_a_bad_update_changes_nothing(self, client: Any, admin: dict[str, str]) -> None:
        account = await (await _create(client, admin, PAYME)).json()
        for body in ({"currencies": ["USD"]}, {"credentials": {"nope": "x"}}, {"provider": "click"}, {"name": ""}):
            resp = await client.patch(f"/admin/provider-accounts/{account['id']}", json=body, headers=admin)
            assert resp.status == 422, body
        after = await (await client.get(f"/admin/provider-accounts/{account['id']}", headers=admin)).json()
        assert after == account

    async def test_unknown_account_is_404(self, client: Any, admin: dict[str, str]) -> None:
        for method in ("GET", "PATCH", "DELETE"):
            resp = await client.request(method, "/admin/provider-accounts/pac_missing", json={}, headers=admin)
            assert resp.status == 404, method


class TestAssignment:
    async def test_a_test_tenant_takes_test_accounts_only(self, client: Any, internal_headers: Any) -> None:
        admin = internal_headers(None, issuer="gateway")
        test_account = await (await _create(client, admin, PAYME)).json()
        live_account = await (await _create(client, admin, CLICK)).json()
        tenant = internal_headers("ten_test", issuer="gateway", livemode=False)
        url = "/admin/tenants/ten_test/provider-accounts"
        resp = await client.put(f"{url}/payme", json={"provider_account_id": test_account["id"]}, headers=tenant)
        assert resp.status == 200
        assigned = await resp.json()
        assert (assigned["provider"], assigned["provider_account"]["id"]) == ("payme", test_account["id"])
        resp = await client.put(f"{url}/click", json={"provider_account_id": live_account["id"]}, headers=tenant)
        assert resp.status == 422
        assert "test tenant takes test ones" in (await resp.json())["errors"][0]["message"]
        # An account of another provider, under this provider's name: refused.
        resp = await client.put(f"{url}/click", json={"provider_account_id": test_account["id"]}, headers=tenant)
        assert resp.status == 422
        listed = await (await client.get(url, headers=tenant)).json()
        assert [(a["provider"], a["provider_account"]["id"]) for a in listed["data"]] == [("payme", test_account["id"])]

    async def test_a_live_tenant_takes_production_accounts_only(self, client: Any, internal_headers: Any) -> None:
        admin = internal_headers(None, issuer="gateway")
        test_account = await (await _create(client, admin, PAYME)).json()
        live_account = await (await _create(client, admin, CLICK)).json()
        tenant = internal_headers("ten_live", issuer="gateway", livemode=True)
        url = "/admin/tenants/ten_live/provider-accounts"
        assert (
            await client.put(f"{url}/payme", json={"provider_account_id": test_account["id"]}, headers=tenant)
        ).status == 422
        assert (
            await client.put(f"{url}/click", json={"provider_account_id": live_account["id"]}, headers=tenant)
        ).status == 200

    async def test_an_assigned_account_cannot_be_deleted_until_unassigned(
        self, client: Any, internal_headers: Any
    ) -> None:
        admin = internal_headers(None, issuer="gateway")
        account = await (await _create(client, admin, PAYME)).json()
        tenant = internal_headers("ten_a", issuer="gateway")
        url = "/admin/tenants/ten_a/provider-accounts/payme"
        assert (await client.put(url, json={"provider_account_id": account["id"]}, headers=tenant)).status == 200
        resp = await client.delete(f"/admin/provider-accounts/{account['id']}", headers=admin)
        assert resp.status == 409 and (await resp.json())["code"] == "account_assigned"
        assert (await client.delete(url, headers=tenant)).status == 200
        assert (await client.delete(url, headers=tenant)).status == 404  # nothing assigned any more
        assert (await client.delete(f"/admin/provider-accounts/{account['id']}", headers=admin)).status == 200
        assert (await client.get(f"/admin/provider-accounts/{account['id']}", headers=admin)).status == 404

    async def test_concurrent_delete_and_assign_never_leave_a_dangling_assignment(
        self, client: Any, internal_headers: Any
    ) -> None:
        admin = internal_headers(None, issuer="gateway")
        tenant = internal_headers("ten_a", issuer="gateway")
        for i in range(5):
            account = await (await _create(client, admin, _payme(f"k{i}"))).json()
            deleted, assigned = await asyncio.gather(
                client.delete(f"/admin/provider-accounts/{account['id']}", headers=admin),
                client.put(
                    "/admin/tenants/ten_a/provider-accounts/payme",
                    json={"provider_account_id": account["id"]},
                    headers=tenant,
                ),
            )
            # Exactly one wins: deleted then refused (422), or assigned then the delete refused (409).
            assert sorted([deleted.status, assigned.status]) in ([200, 422], [200, 409]), (
                deleted.status,
                assigned.status,
            )
            await client.delete("/admin/tenants/ten_a/provider-accounts/payme", headers=tenant)

    async def test_the_token_must_name_the_tenant_of_the_path(self, client: Any, internal_headers: Any) -> None:
        other = internal_headers("ten_b", issuer="gateway")
        assert (await client.get("/admin/tenants/ten_a/provider-accounts", headers=other)).status == 403

    async def test_an_unknown_provider_in_the_path_is_404(self, client: Any, internal_headers: Any) -> None:
        tenant = internal_headers("ten_a", issuer="gateway")
        resp = await client.put("/admin/tenants/ten_a/provider-accounts/paypal", json={}, headers=tenant)
        assert resp.status == 404


class TestKeyRotation:
    async def test_credentials_written_with_an_old_key_read_after_a_new_one_is_added(
        self, make_client: Any, internal_headers: Any
    ) -> None:
        admin = internal_headers(None, issuer="gateway")
        old = await make_client()
        account = await (await _create(old, admin, PAYME)).json()
        rotated = await make_client(credentials_keys=SecretStr(f"{generate_key()},{CREDENTIALS_KEYS}"))
        resp = await rotated.patch(
            f"/admin/provider-accounts/{account['id']}", json={"credentials": {"key": "new"}}, headers=admin
        )
        assert resp.status == 200  # the old ciphertext opened (merging needs the old fields)
        assert (await resp.json())["credentials_set"] == ["key", "merchant_id"]

    @pytest.mark.parametrize(
        ("value", "problem"),
        [
            ("", "is required"),
            ("not-a-key", "key 1 must be url-safe base64 of 32 bytes"),
            (f"{CREDENTIALS_KEYS},short", "key 2 must be url-safe base64 of 32 bytes"),
            (f"{CREDENTIALS_KEYS},{CREDENTIALS_KEYS}", "listed twice"),
        ],
    )
    def test_a_bad_key_list_stops_start_up_naming_the_variable(self, value: str, problem: str) -> None:
        from providers_svc.settings import Settings

        with pytest.raises(ValidationError) as info:
            Settings(**SECRETS, credentials_keys=value)  # type: ignore[arg-type]
        message = str(info.value)
        assert "PROVIDERS_CREDENTIALS_KEYS" in message and problem in message
        assert CREDENTIALS_KEYS not in message
