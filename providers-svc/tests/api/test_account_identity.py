"""The credential a provider's callbacks find their account by names one account only: a Payme key (the
Basic auth of every JSON-RPC call) or a Click service_id. A second account with it would lock the first
out (Payme refuses an ambiguous key) or make it unpayable (Click takes the first that verifies), so it is
refused with 409, also when two creations race (found in review)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytestmark = pytest.mark.postgres

PAYME = {
    "provider": "payme",
    "name": "kassa",
    "environment": "test",
    "currencies": ["UZS"],
    "credentials": {"merchant_id": "5e730e8e0b852a417aa49ceb", "key": "the-kassa-key-0123456789"},
}
CLICK = {
    "provider": "click",
    "name": "click",
    "environment": "test",
    "currencies": ["UZS"],
    "credentials": {"service_id": "101", "merchant_id": "202", "merchant_user_id": "303", "secret_key": "s1"},
}


async def _create(client: Any, admin: dict[str, str], body: dict[str, Any]) -> Any:
    return await client.post("/admin/provider-accounts", json=body, headers=admin)


@pytest.mark.parametrize(("body", "other"), [(PAYME, {"merchant_id": "x" * 24}), (CLICK, {"secret_key": "s2"})])
async def test_a_second_account_with_the_same_identity_is_409(
    client: Any, admin: dict[str, str], body: dict[str, Any], other: dict[str, str]
) -> None:
    assert (await _create(client, admin, body)).status == 201
    production = {**body, "environment": "production", "credentials": {**body["credentials"], **other}}
    refused = await _create(client, admin, production)
    assert refused.status == 409
    problem = await refused.json()
    assert problem["code"] == "credentials_in_use"
    assert body["credentials"]["service_id" if body is CLICK else "key"] not in await refused.text()
    listed = await (await client.get("/admin/provider-accounts", headers=admin)).json()
    assert len(listed["data"]) == 1


async def test_an_update_onto_another_accounts_key_is_409(client: Any, admin: dict[str, str]) -> None:
    first = await (await _create(client, admin, PAYME)).json()
    second_body = {**PAYME, "credentials": {**PAYME["credentials"], "key": "another-key-0123456789"}}
    second = await (await _create(client, admin, second_body)).json()
    changes = {"credentials": {"key": PAYME["credentials"]["key"]}}
    refused = await client.patch(f"/admin/provider-accounts/{second['id']}", json=changes, headers=admin)
    assert refused.status == 409
    # Its own key again, or a fresh one, is fine.
    same = await client.patch(f"/admin/provider-accounts/{first['id']}", json=changes, headers=admin)
    assert same.status == 200


async def test_racing_creations_with_one_key_make_one_account(client: Any, admin: dict[str, str]) -> None:
    answers = await asyncio.gather(*(_create(client, admin, PAYME) for _ in range(6)))
    assert sorted(a.status for a in answers) == [201, 409, 409, 409, 409, 409]
