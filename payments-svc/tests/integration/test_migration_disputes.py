"""Migration ``disputes`` on a database that already holds a payment: the payment reads as never
disputed, and the new bound on ``amount_disputed`` holds."""

from __future__ import annotations

import os
from pathlib import Path

import asyncpg
import pytest
from billing_runtime.migrations import upgrade_async
from billing_runtime.testing import PG_DSN

SERVICE_ROOT = Path(__file__).resolve().parents[2]


class TestMigrationDisputes:
    async def test_existing_payments_are_undisputed_and_bounded(self) -> None:
        name = f"payments_mig_dsp_{os.getpid()}"
        admin = await asyncpg.connect(PG_DSN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
        base = PG_DSN.rsplit("/", 1)[0]
        url = f"{base.replace('postgresql://', 'postgresql+asyncpg://', 1)}/{name}"
        try:
            await upgrade_async(SERVICE_ROOT, url, "outbox_dead_letters")
            conn = await asyncpg.connect(f"{base}/{name}")
            try:
                await conn.execute(
                    "INSERT INTO payments (id, tenant_id, status, amount, currency, amount_refunded, order_id,"
                    " metadata, checkout_token, created_at, updated_at, expires_at, sweep_at) VALUES"
                    " ('pay_1', 'ten_a', 'SUCCEEDED', 5000, 'USD', 0, 'o1', '{}', 'tok_1',"
                    " now(), now(), now(), now())"
                )
                await upgrade_async(SERVICE_ROOT, url)
                row = await conn.fetchrow("SELECT amount_disputed, dispute FROM payments")
                assert (row["amount_disputed"], row["dispute"]) == (0, None)
                with pytest.raises(asyncpg.CheckViolationError):
                    await conn.execute("UPDATE payments SET amount_disputed = 5001")
                assert await conn.fetchval("SELECT count(*) FROM disputes") == 0
            finally:
                await conn.close()
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
