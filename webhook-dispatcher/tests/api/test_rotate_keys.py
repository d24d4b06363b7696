"""``webhook-dispatcher rotate-keys``: after a new key is put in front of WEBHOOKS_ENCRYPTION_KEY, every
endpoint's signing secrets (the current one and the one kept through a secret rotation's grace period)
are re-encrypted with it, so the old key can be dropped; the secrets themselves do not change."""

from __future__ import annotations

from typing import Any

from billing_runtime.key_ring import KeyRing, generate_key
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from webhook_dispatcher.__main__ import rotate_keys


async def test_both_secrets_read_with_the_new_key_alone(
    client: Any, auth: Any, settings_factory: Any, clean_db: AsyncEngine
) -> None:
    made = await client.post("/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/x"}, headers=auth())
    endpoint = await made.json()
    rotated = await client.post(f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret", headers=auth())
    assert rotated.status == 200
    current = (await rotated.json())["secret"]
    settings = settings_factory()
    new = generate_key()
    old = settings.encryption_key.get_secret_value()
    assert await rotate_keys(settings.model_copy(update={"encryption_key": SecretStr(f"{new},{old}")})) == 1
    async with clean_db.connect() as conn:
        row = (
            await conn.execute(text("SELECT secret_encrypted, previous_secret_encrypted FROM webhook_endpoints"))
        ).one()
    ring = KeyRing(new)
    assert ring.decrypt(row[0]) == current
    assert ring.decrypt(row[1]) == endpoint["secret"]
