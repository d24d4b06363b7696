"""``providers-svc rotate-keys``: after a new key is put in front of PROVIDERS_CREDENTIALS_KEYS, every
stored account (a simulator's too) is re-encrypted with it, so the old key can be dropped."""

from __future__ import annotations

import json
from typing import Any

import pytest
from billing_runtime.key_ring import KeyRing, generate_key
from providers_svc.__main__ import rotate_keys
from providers_svc.db.models import ProviderAccountRow
from providers_svc.settings import Settings
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

pytestmark = pytest.mark.postgres

ACCOUNT = {
    "provider": "octo",
    "name": "Shop Octo",
    "environment": "test",
    "currencies": ["UZS"],
    "credentials": {"shop_id": "77", "secret": "octo-shop-secret"},
}


async def test_every_account_reads_with_the_new_key_alone(
    make_client: Any, internal_headers: Any, settings: Settings, engine: AsyncEngine
) -> None:
    client = await make_client()
    resp = await client.post("/admin/provider-accounts", json=ACCOUNT, headers=internal_headers(None, issuer="gateway"))
    assert resp.status == 201
    new = generate_key()
    old = settings.credentials_keys.get_secret_value()
    assert await rotate_keys(settings.model_copy(update={"credentials_keys": SecretStr(f"{new},{old}")})) == 1
    async with engine.connect() as conn:
        (ciphertext,) = (await conn.execute(select(ProviderAccountRow.credentials_ciphertext))).one()
    assert json.loads(KeyRing(new).decrypt(ciphertext)) == ACCOUNT["credentials"]
