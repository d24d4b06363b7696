"""Migration ``refunds`` on a database that already holds payments: what they refunded is what they hold
for refunds, and the refund bound holds from then on."""

from __future__ import annotations

import os
from pathlib import Path

import asyncpg
import pytest
from billing_runtime.migrations import upgrade_async
from billing_runtime.testing import PG_DSN

SERVICE_ROOT = Path(__file__).resolve().parents[2]


class TestMigrationRefunds:
    async def test_existing_payments_hold_what_they_refunded_and_are_bounded(self) -> None:
        name = f"payments_mig_rfnd_{os.getpid()}"
        admin = await asyncpg.connect(PG_DSN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
        base = PG_DSN.rsplit("/", 1)[0]
        url = f"{base.replace('postgresql://', 'postgresql+asyncpg://', 1)}/{name}"
        try:
            await upgrade_async(SERVICE_ROOT, url, "disputes")
            conn = await asyncpg.connect(f"{base}/{name}")
            try:
                for payment_id, status, refunded in (("pay_1", "SUCCEEDED", 0), ("pay_2", "PARTIALLY_REFUNDED", 1200)):
                    await conn.execute(
                        "INSERT INTO payments (id, tenant_id, status, amount, currency, amount_refunded, order_id,"
                        " metadata, checkout_token, created_at, updated_at, expires_at, sweep_at) VALUES"
                        " ($1::text, 'ten_a', $2, 5000, 'USD', $3, 'o1', '{}', 'tok_' || $1::text,"
                        " now(), now(), now(), now())",
                        payment_id,
                        status,
                        refunded,
                    )
                await upgrade_async(SERVICE_ROOT, url)
                rows = await conn.fetch("SELECT id, refund_reserved FROM payments ORDER BY id")
                assert [(r["id"], r["refund_reserved"]) for r in rows] == [("pay_1", 0), ("pay_2", 1200)]
                with pytest.raises(asyncpg.CheckViolationError):
                    await conn.execute("UPDATE payments SET refund_reserved = 5001 WHERE id = 'pay_1'")
                with pytest.raises(asyncpg.CheckViolationError):
                    await conn.execute("UPDATE payments SET refund_reserved = 1000 WHERE id = 'pay_2'")
                assert await conn.fetchval("SELECT count(*) FROM refunds") == 0
            finally:
                await conn.close()
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
