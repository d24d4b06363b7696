"""Finishing a key rotation (``reencrypt_columns``) on real PostgreSQL: afterwards the new key alone opens
every stored value, nulls stay null, batches cover every row, and a value no key opens stops the run
without losing what was done."""

from __future__ import annotations

import pytest
from billing_runtime.key_ring import KeyRing, UndecryptableError, generate_key
from billing_runtime.key_rotation import reencrypt_columns
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

pytestmark = pytest.mark.postgres


@pytest.fixture
async def vault(engine: AsyncEngine) -> AsyncEngine:
    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE IF EXISTS rotation_vault"))
        await conn.execute(text("CREATE TABLE rotation_vault (id text PRIMARY KEY, a text NOT NULL, b text)"))
    return engine


async def _fill(engine: AsyncEngine, ring: KeyRing, count: int) -> None:
    async with engine.begin() as conn:
        for i in range(count):
            b = ring.encrypt(f"b{i}") if i % 2 else None
            await conn.execute(
                text("INSERT INTO rotation_vault VALUES (:id, :a, :b)"),
                {"id": f"row{i:02d}", "a": ring.encrypt(f"a{i}"), "b": b},
            )


async def _rows(engine: AsyncEngine) -> list[tuple[str, str, str | None]]:
    async with engine.connect() as conn:
        return [tuple(r) for r in (await conn.execute(text("SELECT id, a, b FROM rotation_vault ORDER BY id"))).all()]


async def test_after_the_run_the_new_key_alone_opens_everything(vault: AsyncEngine) -> None:
    old, new = generate_key(), generate_key()
    await _fill(vault, KeyRing(old), 7)
    done = await reencrypt_columns(vault, KeyRing(f"{new},{old}"), "rotation_vault", "id", ("a", "b"), batch=3)
    assert done == 7
    alone = KeyRing(new)
    rows = await _rows(vault)
    assert [(alone.decrypt(a), alone.decrypt(b) if b else None) for _, a, b in rows] == [
        (f"a{i}", f"b{i}" if i % 2 else None) for i in range(7)
    ]
    with pytest.raises(UndecryptableError):
        KeyRing(old).decrypt(rows[0][1])


async def test_a_value_no_key_opens_stops_the_run_and_keeps_what_was_done(vault: AsyncEngine) -> None:
    old, new, lost = generate_key(), generate_key(), generate_key()
    await _fill(vault, KeyRing(old), 4)
    async with vault.begin() as conn:
        await conn.execute(
            text("INSERT INTO rotation_vault VALUES ('row99', :a, NULL)"), {"a": KeyRing(lost).encrypt("x")}
        )
    with pytest.raises(UndecryptableError):
        await reencrypt_columns(vault, KeyRing(f"{new},{old}"), "rotation_vault", "id", ("a",), batch=2)
    rows = await _rows(vault)
    # The two full batches before the bad row were committed; the bad row's batch was not.
    assert KeyRing(new).decrypt(rows[0][1]) == "a0"
    assert KeyRing(new).decrypt(rows[3][1]) == "a3"
