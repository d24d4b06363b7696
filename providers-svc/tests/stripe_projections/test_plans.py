"""The projection's upserts are planned once per connection, not at every execution.

PostgreSQL plans a prepared statement afresh for its first five executions, then keeps one generic plan
unless the plans made for the values given looked cheaper than it: which they did while the upsert
decided in SQL, by parameters, what the kind of object mirrors (a plan for the values drops the branches
they rule out). Planning it again cost more than executing it, on every Stripe event. These run each
shape of upsert on one connection and read PostgreSQL's own count of its plans."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from billing_runtime.prepared import InTransaction
from providers_svc.db.stripe_writes import UpsertShape, upsert
from providers_svc.domain.stripe_objects import state_of
from sqlalchemy.ext.asyncio import AsyncEngine

from .conftest import T0, charge, customer, event, invoice

pytestmark = pytest.mark.postgres

RUNS = 8  # past PostgreSQL's five custom plans


def _objects(kind: str, n: int) -> tuple[dict[str, Any], str]:
    if kind == "customer":
        return customer(f"cus_plan{n:04d}"), "customer.updated"
    if kind == "invoice":
        return invoice(f"in_plan{n:04d}", subscription_id=None if n < RUNS else "sub_plan"), "invoice.updated"
    return charge(f"ch_plan{n:04d}", invoice=None if n < RUNS else "in_plan0000"), "charge.updated"


@pytest.mark.parametrize("kind", ["customer", "invoice", "charge"])
async def test_each_upsert_shape_keeps_one_generic_plan(engine: AsyncEngine, kind: str) -> None:
    now = datetime.now(UTC)
    # A connection of its own: no prepared statement (nor count of plans) from another test.
    conn = await asyncpg.connect(engine.url.set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        statements = InTransaction(conn, engine.dialect)
        # A table of some size, analysed: on an empty one every plan is as cheap as any other.
        assert await upsert(statements, state_of(event(customer("cus_seed"), "customer.created")), (), now)
        await conn.execute(
            "INSERT INTO stripe_objects SELECT (jsonb_populate_record(s, jsonb_build_object("
            " 'stripe_id', s.stripe_id || g, 'object', k, 'subscription', 'sub_' || g, 'invoice', 'in_' || g))).*"
            " FROM stripe_objects s, generate_series(1, 500) g,"
            " unnest(ARRAY['customer', 'invoice', 'charge', 'subscription']) k"
        )
        await conn.execute("ANALYZE stripe_objects")
        shapes = set()
        for n in range(2 * RUNS):
            obj, type_ = _objects(kind, n)
            state = state_of(event(obj, type_, created=T0 + n))
            assert state is not None
            shapes.add(UpsertShape.of(state))
            assert await upsert(statements, state, ("ten_aaaaaaaaaaaaaaaa",), now) is not None
        plans = await conn.fetch(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
            " WHERE statement LIKE 'INSERT INTO stripe_objects%' AND statement LIKE $1",
            f"%'{kind}' AS object%",
        )
    finally:
        await conn.close()
    assert len(plans) == len(shapes)  # one statement per shape
    for row in plans:
        assert row["custom_plans"] <= 5 and row["generic_plans"] >= RUNS - 5, dict(row)
