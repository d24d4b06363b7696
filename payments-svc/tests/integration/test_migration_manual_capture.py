"""Migration ``manual_capture`` on a database that already holds payments: every one is automatic, a paid
one (SUCCEEDED, PARTIALLY_REFUNDED, REFUNDED) captured its amount, the others nothing, and refunds are
bounded by what was captured from then on."""

from __future__ import annotations

import os
from pathlib import Path

import asyncpg
import pytest
from billing_runtime.migrations import upgrade_async
from billing_runtime.testing import PG_DSN

SERVICE_ROOT = Path(__file__).resolve().parents[2]

_ROWS = (
    ("pay_1", "SUCCEEDED", 0),
    ("pay_2", "PARTIALLY_REFUNDED", 1200),
    ("pay_3", "REFUNDED", 5000),
    ("pay_4", "PROVIDER_PENDING", 0),
    ("pay_5", "FAILED", 0),
)


class TestMigrationManualCapture:
    async def test_paid_payments_captured_their_amount_and_bound_their_refunds(self) -> None:
        name = f"payments_mig_capture_{os.getpid()}"
        admin = await asyncpg.connect(PG_DSN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
        base = PG_DSN.rsplit("/", 1)[0]
        url = f"{base.replace('postgresql://', 'postgresql+asyncpg://', 1)}/{name}"
        try:
            await upgrade_async(SERVICE_ROOT, url, "outbox_traceparent")
            conn = await asyncpg.connect(f"{base}/{name}")
            try:
                for payment_id, status, refunded in _ROWS:
                    await conn.execute(
                        "INSERT INTO payments (id, tenant_id, status, amount, currency, amount_refunded, order_id,"
                        " metadata, checkout_token, created_at, updated_at, expires_at, sweep_at, refund_reserved)"
                        " VALUES ($1::text, 'ten_a', $2, 5000, 'USD', $3, 'o1', '{}', 'tok_' || $1::text,"
                        " now(), now(), now(), now(), $3)",
                        payment_id,
                        status,
                        refunded,
                    )
                await upgrade_async(SERVICE_ROOT, url)
                rows = await conn.fetch(
                    "SELECT id, capture_method, amount_captured, amount_capturable, authorization_expires_at"
                    " FROM payments ORDER BY id"
                )
                assert [(r["id"], r["capture_method"], r["amount_captured"]) for r in rows] == [
                    ("pay_1", "automatic", 5000),
                    ("pay_2", "automatic", 5000),
                    ("pay_3", "automatic", 5000),
                    ("pay_4", "automatic", 0),
                    ("pay_5", "automatic", 0),
                ]
                assert {(r["amount_capturable"], r["authorization_expires_at"]) for r in rows} == {(0, None)}
                with pytest.raises(asyncpg.CheckViolationError):
                    await conn.execute("UPDATE payments SET amount_captured = 3000 WHERE id = 'pay_3'")
                with pytest.raises(asyncpg.CheckViolationError):
                    await conn.execute("UPDATE payments SET status = 'AUTHORIZED', capture_method = 'later'")
                await conn.execute(
                    "UPDATE payments SET status = 'AUTHORIZED', capture_method = 'manual' WHERE id = 'pay_4'"
                )
            finally:
                await conn.close()
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
