"""A guarded write's check that the payment is still as read (``payment_unchanged``) finds its row by the
primary key alone, whatever PostgreSQL's statistics say.

The check compares the key, the status and ``updated_at``. With all three in one WHERE, a plan made on
statistics taken while the table was small picked ``ix_payments_status_sweep`` (status, sweep_at) as
readily as the key's index, and then read every payment in the status to keep one: every outcome of a
provider walked all the payments waiting for one (a lifecycle bench's auto_explain: 621 buffers for one
row). Counted in PostgreSQL's own statistics of that index."""

from __future__ import annotations

import asyncio
from datetime import datetime

import asyncpg
import pytest
from billing_runtime.prepared import InTransaction
from payments_svc.db.models import Payment
from payments_svc.db.repositories import payment_unchanged
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

pytestmark = pytest.mark.postgres

RUNS = 8  # past PostgreSQL's five custom plans


async def test_the_payment_is_checked_by_its_key_alone(engine: AsyncEngine, new_payment) -> None:  # type: ignore[no-untyped-def]
    payment = await new_payment()
    conn = await asyncpg.connect(engine.url.set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        # Analysed with one payment; then two thousand waiting for their provider, as a busy checkout has.
        await conn.execute("ANALYZE payments")
        await conn.execute(
            "INSERT INTO payments SELECT (jsonb_populate_record(p, jsonb_build_object("
            " 'id', p.id || '_' || g, 'checkout_token', p.checkout_token || '_' || g,"
            " 'status', 'PROVIDER_PENDING'))).* FROM payments p, generate_series(1, 2000) g"
        )
        held = await conn.fetchrow("SELECT id, status, updated_at FROM payments WHERE id = $1", payment["id"] + "_1000")
        statements = InTransaction(conn, engine.dialect)
        read = "SELECT pg_stat_get_xact_tuples_returned('ix_payments_status_sweep'::regclass)"
        transaction = conn.transaction()  # (the counts are the transaction's own)
        await transaction.start()
        walked = []
        for _ in range(RUNS):
            check = payment_unchanged(Payment(id=held["id"], status=held["status"], updated_at=held["updated_at"]))
            before = await conn.fetchval(read)
            [(found,)] = await statements.rows(select(check.clause), check.params)
            assert found is True
            walked.append(await conn.fetchval(read) - before)
        stale = payment_unchanged(
            Payment(id=held["id"], status="SUCCEEDED", updated_at=datetime.now(held["updated_at"].tzinfo))
        )
        [(found,)] = await statements.rows(select(stale.clause), stale.params)
        assert found is False
        await transaction.rollback()
    finally:
        await conn.close()
    assert walked == [0] * RUNS, f"index entries of ix_payments_status_sweep read per check: {walked}"


async def test_the_check_waits_for_a_concurrent_writer_and_compares_its_version(
    engine: AsyncEngine, new_payment
) -> None:  # type: ignore[no-untyped-def]
    """Found by its key alone, the row is still locked before it is compared: a check that meets a writer
    holding the row waits for its commit and then compares the version that writer left."""
    payment = await new_payment()
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    writer, checker = await asyncpg.connect(url), await asyncpg.connect(url)
    try:
        held = await checker.fetchrow("SELECT id, status, updated_at FROM payments WHERE id = $1", payment["id"])
        check = payment_unchanged(Payment(id=held["id"], status=held["status"], updated_at=held["updated_at"]))
        statements = InTransaction(checker, engine.dialect)
        writing = writer.transaction()
        await writing.start()
        await writer.execute(
            "UPDATE payments SET updated_at = updated_at + interval '1 second' WHERE id = $1", held["id"]
        )
        checking = asyncio.ensure_future(statements.rows(select(check.clause), check.params))
        await asyncio.sleep(0.3)
        assert not checking.done()  # waiting for the writer's row lock
        await writing.commit()
        [(found,)] = await asyncio.wait_for(checking, 10)
        assert found is False  # the version compared is the one the writer committed
        [(found,)] = await statements.rows(select(check.clause), check.params)
        assert found is False
    finally:
        await writer.close()
        await checker.close()
