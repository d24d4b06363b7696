"""Migration ``payment_attempts`` on a database that already holds payments: each payment started at a
provider gets the one attempt it had, in its payment's terms, and the one-pending rule holds from then on."""

from __future__ import annotations

import os
from pathlib import Path

import asyncpg
import pytest
from billing_runtime.migrations import upgrade_async
from billing_runtime.testing import PG_DSN

SERVICE_ROOT = Path(__file__).resolve().parents[2]


class TestMigrationAttempts:
    async def test_started_payments_get_their_attempt(self) -> None:
        name = f"payments_mig_att_{os.getpid()}"
        admin = await asyncpg.connect(PG_DSN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
        base = PG_DSN.rsplit("/", 1)[0]
        url = f"{base.replace('postgresql://', 'postgresql+asyncpg://', 1)}/{name}"
        try:
            await upgrade_async(SERVICE_ROOT, url, "outbox_traceparent")
            conn = await asyncpg.connect(f"{base}/{name}")
            try:
                payments = (
                    ("pay_1", "CREATED", None),
                    ("pay_2", "PROVIDER_PENDING", "ptx_2"),
                    ("pay_3", "SUCCEEDED", "ptx_3"),
                    ("pay_4", "FAILED", "ptx_4"),
                    ("pay_5", "EXPIRED", "ptx_5"),
                )
                for payment_id, status, ptx in payments:
                    await conn.execute(
                        "INSERT INTO payments (id, tenant_id, status, amount, currency, amount_refunded, order_id,"
                        " metadata, checkout_token, created_at, updated_at, expires_at, sweep_at, provider,"
                        " provider_transaction_id) VALUES ($1::text, 'ten_a', $2, 5000, 'USD', 0, 'o1', '{}',"
                        " 'tok_' || $1::text, now(), now(), now(), now(), CASE WHEN $3::text IS NULL THEN NULL"
                        " ELSE 'sandbox' END, $3::text)",
                        payment_id,
                        status,
                        ptx,
                    )
                await upgrade_async(SERVICE_ROOT, url)
                counts = await conn.fetch("SELECT id, attempt_count FROM payments ORDER BY id")
                assert [(r["id"], r["attempt_count"]) for r in counts] == [
                    ("pay_1", 0),
                    ("pay_2", 1),
                    ("pay_3", 1),
                    ("pay_4", 1),
                    ("pay_5", 1),
                ]
                rows = await conn.fetch("SELECT payment_id, status, provider, id FROM payment_attempts ORDER BY 1")
                assert [(r["payment_id"], r["status"], r["provider"]) for r in rows] == [
                    ("pay_2", "pending", "sandbox"),
                    ("pay_3", "succeeded", "sandbox"),
                    ("pay_4", "failed", "sandbox"),
                    ("pay_5", "cancelled", "sandbox"),
                ]
                assert all(r["id"].startswith("att_") for r in rows)
                # ATT-1: a second pending attempt of one payment is refused by the database.
                with pytest.raises(asyncpg.UniqueViolationError):
                    await conn.execute(
                        "INSERT INTO payment_attempts (id, payment_id, tenant_id, provider, provider_transaction_id,"
                        " status, created_at, updated_at) VALUES ('att_x', 'pay_2', 'ten_a', 'other', 'ptx_x',"
                        " 'pending', now(), now())"
                    )
                with pytest.raises(asyncpg.CheckViolationError):
                    await conn.execute("UPDATE payment_attempts SET status = 'lost' WHERE payment_id = 'pay_3'")
            finally:
                await conn.close()
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
