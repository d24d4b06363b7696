"""Finishing a key rotation: re-encrypt every stored ciphertext with the first key of a ``KeyRing``, so
the old key can be dropped from the list. Run by each service's ``rotate-keys`` command after the new key
was put in front and the service restarted (README "Rotating an encryption key")."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from billing_runtime.key_ring import KeyRing

BATCH = 200


async def reencrypt_columns(
    engine: AsyncEngine, ring: KeyRing, table: str, key: str, columns: Sequence[str], *, batch: int = BATCH
) -> int:
    """Re-encrypt the non-null ``columns`` of every row of ``table`` (names from our code, never from
    input) with the ring's first key; returns the rows rewritten. Batches in ``key`` order, each row
    under its lock, so a concurrent write of the same row waits and a concurrent new row (already
    encrypted with the first key) is harmless. A ciphertext no key opens stops the run
    (``UndecryptableError``) with what was done so far committed: nothing is ever half-written."""
    chosen = ", ".join(columns)
    select = text(f"SELECT {key}, {chosen} FROM {table} WHERE {key} > :after ORDER BY {key} LIMIT :n FOR UPDATE")  # noqa: S608
    assignments = ", ".join(f"{c} = :{c}" for c in columns)
    update = text(f"UPDATE {table} SET {assignments} WHERE {key} = :key")  # noqa: S608
    after = ""
    done = 0
    while True:
        async with engine.begin() as conn:
            rows = (await conn.execute(select, {"after": after, "n": batch})).all()
            for row in rows:
                values = {c: (ring.rotate(v) if v is not None else None) for c, v in zip(columns, row[1:], strict=True)}
                await conn.execute(update, {**values, "key": row[0]})
        done += len(rows)
        if len(rows) < batch:
            return done
        after = rows[-1][0]
