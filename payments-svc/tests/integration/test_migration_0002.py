"""Migration 0002 on a database that already holds payments and events (PostgreSQL): the sequence of
every payment goes on from the changes it went through, old events keep their order in the log, and
the sweeper finds every payment due."""

from __future__ import annotations

import os
from pathlib import Path

import asyncpg
from billing_runtime.migrations import upgrade_async
from billing_runtime.testing import PG_DSN

SERVICE_ROOT = Path(__file__).resolve().parents[2]


class TestMigration0002:
    async def test_existing_rows_are_carried_over(self) -> None:
        name = f"payments_mig_{os.getpid()}"
        admin = await asyncpg.connect(PG_DSN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
        base = PG_DSN.rsplit("/", 1)[0]
        url = f"{base.replace('postgresql://', 'postgresql+asyncpg://', 1)}/{name}"
        try:
            await upgrade_async(SERVICE_ROOT, url, "0001")
            conn = await asyncpg.connect(f"{base}/{name}")
            try:
                await conn.execute(
                    "INSERT INTO payments (id, tenant_id, status, amount, currency, amount_refunded, order_id,"
                    " metadata, checkout_token, created_at, updated_at, expires_at) VALUES"
                    " ('pay_1', 'ten_a', 'PROVIDER_PENDING', 5000, 'USD', 0, 'o1', '{}', 'tok_1',"
                    " now(), now(), now() - interval '1 minute')"
                )
                await conn.execute(
                    "INSERT INTO payment_status_history (payment_id, from_status, to_status, actor, created_at)"
                    " VALUES ('pay_1', NULL, 'CREATED', 'tenant', now()),"
                    " ('pay_1', 'CREATED', 'PROVIDER_PENDING', 'payer', now())"
                )
                await conn.execute(
                    "INSERT INTO events (id, tenant_id, type, data, created_at) VALUES"
                    " ('evt_a', 'ten_a', 'payment.created', '{}', now()),"
                    " ('evt_b', 'ten_a', 'payment.pending', '{}', now())"
                )
                await upgrade_async(SERVICE_ROOT, url)
                payment = await conn.fetchrow("SELECT sequence, livemode, sweep_at, expires_at FROM payments")
                assert (payment["sequence"], payment["livemode"]) == (2, False)
                assert payment["sweep_at"] == payment["expires_at"]
                events = await conn.fetch("SELECT id, position FROM events ORDER BY position")
                assert [e["id"] for e in events] == ["evt_a", "evt_b"]
                # New events are placed after the old ones.
                await conn.execute(
                    "INSERT INTO events (id, tenant_id, type, data, created_at) VALUES"
                    " ('evt_c', 'ten_a', 'payment.succeeded', '{}', now())"
                )
                assert await conn.fetchval("SELECT nextval('events_position_seq')") > events[-1]["position"]
            finally:
                await conn.close()
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
