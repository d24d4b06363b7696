"""The ingest statement is planned once per connection, not at every batch of events.

PostgreSQL plans a prepared statement for the values given at its first five executions, then keeps one
generic plan unless those plans looked cheaper than it. The ingest reads its batch through ``unnest`` of
array parameters: a plan for the values counted their few elements where the generic plan assumes ten,
so it always looked cheaper, and the statement was planned afresh at every batch (more PostgreSQL time
than executing it). This runs the statement, plain and leasing, on one connection and reads PostgreSQL's
own count of its plans."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from billing_contracts.envelope import utcnow
from billing_runtime.prepared import InTransaction
from sqlalchemy.ext.asyncio import AsyncEngine
from webhook_dispatcher.services.fanout import delivery_row
from webhook_dispatcher.services.ingest import _INGEST, ingest_params

pytestmark = pytest.mark.postgres

RUNS = 10  # past PostgreSQL's five custom plans


async def test_the_ingest_keeps_one_generic_plan(start_app, auth, receiver, make_event, clean_db: AsyncEngine) -> None:  # type: ignore[no-untyped-def]
    api = await start_app(roles=("api",))
    hook = await receiver()
    response = await api.post("/v1/webhook-endpoints", json={"url": hook.url}, headers=auth())
    assert response.status == 201
    endpoint_id = (await response.json())["id"]
    # A connection of its own: no prepared statement (nor count of plans) from another test.
    conn = await asyncpg.connect(clean_db.url.set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        statements = InTransaction(conn, clean_db.dialect)
        stored = 0
        for n in range(RUNS):
            if n == 1:
                # Tables of some size, analysed, as on a running platform (on empty ones every plan costs
                # about the same): the first event's delivery, a thousand times over, delivered.
                await conn.execute(
                    "INSERT INTO webhook_events SELECT (jsonb_populate_record(e, jsonb_build_object("
                    " 'id', e.id || '_' || g))).* FROM webhook_events e, generate_series(1, 1000) g"
                )
                await conn.execute(
                    "INSERT INTO webhook_deliveries SELECT (jsonb_populate_record(d, jsonb_build_object("
                    " 'id', 'wd_plan' || g, 'event_id', d.event_id || '_' || g, 'status', 'succeeded',"
                    " 'next_attempt_at', null))).* FROM webhook_deliveries d, generate_series(1, 1000) g"
                )
                stored += 1000
                await conn.execute("ANALYZE")
            # Batches of one to three events, every other one leasing its deliveries (``_store_leasing``).
            batch = [make_event() for _ in range(1 + n % 3)]
            now = utcnow()
            deliveries = [
                delivery_row(e.tenant_id, endpoint_id, e.event_id, e.event_type, now, livemode=e.livemode)
                for e in batch
            ]
            params: dict[str, Any] = ingest_params(batch, deliveries, now)
            if n % 2:
                params |= {
                    "d_lease": [True] * len(deliveries),
                    "mine": [endpoint_id],
                    "worker": "wk_plan",
                    "token": f"wk_plan{n}",
                    "until": now + timedelta(seconds=60),
                }
            rows = await statements.rows(_INGEST, params)
            # Every event is new: one inbox row back each (and its leased delivery, when leasing).
            assert sorted(row[0] for row in rows if not row[1]) == sorted(e.event_id for e in batch)
            stored += len(deliveries)
        plans = await conn.fetch(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
            " WHERE statement LIKE '%INSERT INTO inbox%' AND statement NOT LIKE '%pg_prepared_statements%'"
        )
        assert await conn.fetchval("SELECT count(*) FROM webhook_deliveries") == stored
    finally:
        await conn.close()
    assert len(plans) == 1
    assert plans[0]["custom_plans"] <= 5 and plans[0]["generic_plans"] >= RUNS - 5, dict(plans[0])
