"""The Stripe webhook's statements are planned once per connection, not at every execution, and their
generic plans use the partial indexes meant for them.

PostgreSQL plans a prepared statement afresh for its first five executions, then keeps one generic plan
unless the plans made for the values given looked cheaper than it: which they did while the upsert
decided in SQL, by parameters, what the kind of object mirrors (a plan for the values drops the branches
they rule out). Planning it again cost more than executing it, on every Stripe event. These run each
shape of upsert on one connection and read PostgreSQL's own count of its plans."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from billing_runtime.prepared import InTransaction
from providers_svc.db import stripe as stripe_repository
from providers_svc.db import stripe_links, stripe_writes
from providers_svc.db.stripe_writes import UpsertShape, upsert
from providers_svc.domain.stripe_objects import state_of
from sqlalchemy.ext.asyncio import AsyncEngine

from .conftest import ACCOUNT, T0, charge, customer, event, invoice

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


# Statements whose generic plan must use a partial index: the index, and the statement's builder.
PARTIAL_INDEX_CASES = {
    "a transaction by its intent": ("ix_provider_transactions_stripe_reference", "_locked_by_intent"),
    "the charges an invoice mirrors to": ("ix_stripe_objects_invoice", "_mirror_invoice"),
}


@pytest.mark.parametrize("case", list(PARTIAL_INDEX_CASES))
async def test_a_generic_plan_uses_the_partial_index(engine: AsyncEngine, case: str) -> None:
    """Our constants (``provider = 'stripe'``, ``object = 'charge'``) are written into the statements: a
    generic plan, which every prepared statement ends up with, can prove a partial index's predicate from
    a literal but never from a parameter (it used another index and filtered every Stripe transaction)."""
    index, builder = PARTIAL_INDEX_CASES[case]
    module = stripe_repository if builder == "_locked_by_intent" else stripe_writes
    compiled = getattr(module, builder)().compile(dialect=engine.dialect)  # the driver SQL the service sends
    conn = await asyncpg.connect(engine.url.set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        await conn.execute("SET enable_seqscan = off")
        await conn.execute(f"PREPARE probe AS {compiled}")
        args = ", ".join("NULL" for _ in compiled.positiontup or ())  # a generic plan is the same for any
        plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN EXECUTE probe({args})"))
    finally:
        await conn.close()
    assert index in plan, plan


# Calls that look an object up by the whole primary key (account, kind, Stripe id), given the n-th of
# the account's invoices.
PRIMARY_KEY_CASES: dict[str, Callable[[InTransaction, int], Awaitable[Any]]] = {
    "a charge's invoice, in the charge's upsert": lambda s, n: upsert(
        s, state_of(event(charge(f"ch_pk{n}", invoice=f"in_pk{n}"), "charge.updated")), (), datetime.now(UTC)
    ),
    "the invoice a link names, for its charges": lambda s, n: stripe_writes.mirror_invoice_by_id(
        s, ACCOUNT, f"in_pk{n}", (), datetime.now(UTC)
    ),
    "the customers of invoices": lambda s, n: stripe_links.invoice_customers(s, ACCOUNT, [f"in_pk{n}"]),
}


@pytest.mark.parametrize("case", list(PRIMARY_KEY_CASES))
async def test_a_lookup_by_the_primary_key_does_not_walk_a_partial_index(engine: AsyncEngine, case: str) -> None:
    """The kind is bound (``bound``), not written in: on a table not analysed yet (a new database, or one
    that grew since), the generic plan could prove the invoices' partial index's predicate, took it, and
    read every invoice of the account for the one it wanted, at every execution (924 of them at the end
    of a bench run: 0.4 ms of PostgreSQL's time per charge). Counted in PostgreSQL's own statistics of
    the index, after the five executions planned for their values."""
    call = PRIMARY_KEY_CASES[case]
    conn = await asyncpg.connect(engine.url.set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        statements = InTransaction(conn, engine.dialect)
        # An account's invoices, as many as a bench run leaves, not analysed since they were written.
        state = state_of(event(invoice("in_pk", subscription_id="sub_pk"), "invoice.updated"))
        assert state is not None and await upsert(statements, state, (), datetime.now(UTC)) is not None
        await conn.execute(
            "INSERT INTO stripe_objects SELECT (jsonb_populate_record(s, jsonb_build_object("
            " 'stripe_id', s.stripe_id || g, 'subscription', 'sub_' || g))).*"
            " FROM stripe_objects s, generate_series(1, 1000) g"
        )
        read = "SELECT pg_stat_get_xact_tuples_returned('ix_stripe_objects_subscription'::regclass)"
        # (The counts are the transaction's own.)
        transaction = conn.transaction()
        await transaction.start()
        walked = []
        for n in range(1, RUNS + 1):
            before = await conn.fetchval(read)
            await call(statements, n)
            walked.append(await conn.fetchval(read) - before)
        await transaction.rollback()
    finally:
        await conn.close()
    assert walked[5:] == [0] * (RUNS - 5), f"index entries read per execution: {walked}"
