"""Queued writes: one atomic statement, the same results whether run in a session or alone."""

from datetime import UTC, datetime

import pytest
from billing_runtime.db import make_sessionmaker
from billing_runtime.prepared import execute_statement_alone, fetch_prepared
from billing_runtime.writes import (
    InsertRows,
    Precondition,
    UpdateRows,
    all_hold,
    execute_alone,
    execute_guarded,
    execute_together,
    row_unchanged,
)
from sqlalchemy import String, any_, bindparam, delete, exists, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncEngine

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _row(event_id: str) -> dict[str, object]:
    return {"event_id": event_id, "routing_key": "payments.payment.created.v1", "body": "{}", "created_at": NOW}


async def _outbox(engine: AsyncEngine, schema) -> list[tuple[str, str | None]]:  # type: ignore[no-untyped-def]
    t = schema.outbox
    async with engine.connect() as conn:
        rows = await conn.execute(select(t.c.event_id, t.c.claim_token).order_by(t.c.id))
        return [(r.event_id, r.claim_token) for r in rows]


class TestExecuteTogether:
    async def test_writes_land_together_and_rows_keep_their_order(self, engine, schema) -> None:
        async with make_sessionmaker(engine)() as session:
            await execute_together(session, [InsertRows(schema.outbox, [_row("e0")])])
            await session.commit()
        async with make_sessionmaker(engine)() as session:
            writes = [
                InsertRows(schema.outbox, [_row("e1"), _row("e2"), _row("e3")]),
                InsertRows(schema.applied, [{"event_id": "e1"}]),
                UpdateRows(schema.outbox, where={"event_id": "e0"}, values={"claim_token": "t"}),
            ]
            await execute_together(session, writes)
            await session.commit()
        assert await _outbox(engine, schema) == [("e0", "t"), ("e1", None), ("e2", None), ("e3", None)]

    async def test_one_failing_write_leaves_nothing_behind(self, engine, schema) -> None:
        async with make_sessionmaker(engine)() as session:
            await execute_together(session, [InsertRows(schema.outbox, [_row("dup")])])
            await session.commit()
        async with make_sessionmaker(engine)() as session:
            with pytest.raises(sa_exc.IntegrityError):
                await execute_together(
                    session,
                    [InsertRows(schema.applied, [{"event_id": "x"}]), InsertRows(schema.outbox, [_row("dup")])],
                )
            await session.rollback()
        async with engine.connect() as conn:
            assert (await conn.execute(select(schema.applied.c.event_id))).all() == []
        assert await _outbox(engine, schema) == [("dup", None)]


class TestExecuteGuarded:
    """The guard row and the writes land together, or nothing does when the guard's key exists."""

    async def test_a_new_guard_lets_the_writes_through(self, engine, schema) -> None:
        async with make_sessionmaker(engine)() as session:
            writes = [InsertRows(schema.outbox, [_row("e1"), _row("e2")])]
            assert await execute_guarded(session, InsertRows(schema.applied, [{"event_id": "k"}]), writes) is True
            await session.commit()
        assert await _outbox(engine, schema) == [("e1", None), ("e2", None)]

    async def test_an_existing_guard_writes_nothing(self, engine, schema) -> None:
        async with make_sessionmaker(engine)() as session:
            await execute_together(
                session, [InsertRows(schema.applied, [{"event_id": "k"}]), InsertRows(schema.outbox, [_row("e0")])]
            )
            await session.commit()
        async with make_sessionmaker(engine)() as session:
            writes = [
                InsertRows(schema.outbox, [_row("e1")]),
                UpdateRows(schema.outbox, where={"event_id": "e0"}, values={"claim_token": "t"}),
            ]
            assert await execute_guarded(session, InsertRows(schema.applied, [{"event_id": "k"}]), writes) is False
            await session.commit()
        assert await _outbox(engine, schema) == [("e0", None)]

    async def test_a_precondition_must_hold_for_anything_to_be_written(self, engine, schema) -> None:
        t = schema.outbox
        # "Row e0 is still unclaimed", checked (and on PostgreSQL locked) inside the statement.
        unclaimed = exists(
            select(t.c.id).where(t.c.event_id == bindparam("c_event"), t.c.claim_token.is_(None)).with_for_update()
        )
        async with make_sessionmaker(engine)() as session:
            await execute_together(session, [InsertRows(t, [_row("e0")])])
            await session.commit()
        claim = UpdateRows(t, where={"event_id": "e0"}, values={"claim_token": "mine"})
        for key, expected in (("k1", True), ("k2", False)):  # the first claim makes the second's condition false
            async with make_sessionmaker(engine)() as session:
                guard = InsertRows(schema.applied, [{"event_id": key}])
                written = await execute_guarded(session, guard, [claim], Precondition(unclaimed, {"c_event": "e0"}))
                await session.commit()
            assert written is expected
        async with engine.connect() as conn:
            assert (await conn.execute(select(schema.applied.c.event_id))).scalars().all() == ["k1"]
        assert await _outbox(engine, schema) == [("e0", "mine")]

    async def test_the_guard_is_one_row(self, engine, schema) -> None:
        async with make_sessionmaker(engine)() as session:
            with pytest.raises(ValueError, match="exactly one row"):
                await execute_guarded(session, InsertRows(schema.applied, [{"event_id": "a"}, {"event_id": "b"}]), [])


class TestExecuteAlone:
    """PostgreSQL only: the statement commits itself, with the same values as through the session."""

    async def test_writes_commit_on_their_own_with_typed_values(self, engine, schema) -> None:
        later = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
        rows = [{**_row("e1"), "created_at": later}, _row("e2")]
        assert await execute_alone(engine, [InsertRows(schema.outbox, rows)]) is True
        async with engine.connect() as conn:
            stored = (await conn.execute(select(schema.outbox.c.event_id, schema.outbox.c.created_at))).all()
        assert sorted(stored) == [("e1", later), ("e2", NOW)]

    async def test_guard_decides_and_a_second_call_writes_nothing(self, engine, schema) -> None:
        guard = InsertRows(schema.applied, [{"event_id": "k"}])
        assert await execute_alone(engine, [InsertRows(schema.outbox, [_row("e1")])], guard) is True
        assert await execute_alone(engine, [InsertRows(schema.outbox, [_row("e2")])], guard) is False
        assert await _outbox(engine, schema) == [("e1", None)]

    async def test_a_failed_precondition_writes_nothing_alone_either(self, engine, schema) -> None:
        t = schema.outbox
        absent = exists(select(t.c.id).where(t.c.event_id == bindparam("c_event")).with_for_update())
        guard = InsertRows(schema.applied, [{"event_id": "k"}])
        writes = [InsertRows(t, [_row("e1")])]
        assert await execute_alone(engine, writes, guard, Precondition(absent, {"c_event": "nope"})) is False
        assert await _outbox(engine, schema) == []
        assert await execute_alone(engine, writes, guard, Precondition(absent, {"c_event": "e1"})) is False
        await execute_alone(engine, [InsertRows(t, [_row("e0")])])
        assert await execute_alone(engine, writes, guard, Precondition(absent, {"c_event": "e0"})) is True
        assert [event_id for event_id, _ in await _outbox(engine, schema)] == ["e0", "e1"]

    async def test_preconditions_combined_hold_only_together(self, engine, schema) -> None:
        t = schema.outbox
        await execute_alone(engine, [InsertRows(t, [_row("a"), _row("b")])])
        guard = InsertRows(schema.applied, [{"event_id": "k"}])
        claim = [UpdateRows(t, where={"event_id": "a"}, values={"claim_token": "t"})]
        # Both rows name an ``event_id`` column: the two preconditions' parameters must not collide.
        a_read = row_unchanged(t, {"event_id": "a", "routing_key": _row("a")["routing_key"]}, name="a")
        b_stale = row_unchanged(t, {"event_id": "b", "claim_token": "gone"}, name="b")
        assert await execute_alone(engine, claim, guard, all_hold(a_read, b_stale)) is False
        assert await _outbox(engine, schema) == [("a", None), ("b", None)]
        # (``= NULL`` is never true: the stale one fails on its token, the fresh ones compare a set column.)
        b_read = row_unchanged(t, {"event_id": "b", "routing_key": _row("b")["routing_key"]}, name="b")
        assert all_hold(a_read, b_read).clause is all_hold(a_read, b_read).clause
        assert await execute_alone(engine, claim, guard, all_hold(a_read, b_read)) is True
        assert await _outbox(engine, schema) == [("a", "t"), ("b", None)]

    async def test_a_failing_write_takes_the_guard_with_it(self, engine, schema) -> None:
        assert await execute_alone(engine, [InsertRows(schema.outbox, [_row("dup")])]) is True
        guard = InsertRows(schema.applied, [{"event_id": "k"}])
        with pytest.raises(sa_exc.IntegrityError):
            await execute_alone(engine, [InsertRows(schema.outbox, [_row("dup")])], guard)
        async with engine.connect() as conn:
            assert (await conn.execute(select(schema.applied.c.event_id))).all() == []

    async def test_one_prepared_statement_returns_its_rows_and_an_array_parameter_matches_a_list(
        self, engine, schema
    ) -> None:
        await execute_alone(engine, [InsertRows(schema.outbox, [_row("e1"), _row("e2"), _row("e3")])])
        t = schema.outbox
        stmt = delete(t).where(t.c.event_id == any_(bindparam("ids", type_=ARRAY(String())))).returning(t.c.event_id)
        assert sorted(await execute_statement_alone(engine, stmt, {"ids": ["e1", "e3", "nope"]})) == [("e1",), ("e3",)]
        assert await execute_statement_alone(engine, stmt, {"ids": ["e1"]}) == []  # the same SQL, reused
        assert [event_id for event_id, _ in await _outbox(engine, schema)] == ["e2"]

    async def test_a_prepared_read_returns_typed_rows_by_column_key(self, engine, schema):
        t = schema.outbox
        # A value the statement carries itself (``!= "elsewhere"``) beside the named one.
        query = (
            select(t.c.event_id, t.c.created_at)
            .where(t.c.event_id == bindparam("id"), t.c.routing_key != "elsewhere")
            .with_for_update()
        )
        await execute_together_on(engine, [InsertRows(t, [_row("e1"), _row("e2")])])
        async with make_sessionmaker(engine)() as session, session.begin():
            assert await fetch_prepared(session, query, {"id": "e2"}) == [{"event_id": "e2", "created_at": NOW}]
            assert await fetch_prepared(session, query, {"id": "none"}) == []


async def execute_together_on(engine: AsyncEngine, writes) -> None:  # type: ignore[no-untyped-def]
    async with make_sessionmaker(engine)() as session, session.begin():
        await execute_together(session, writes)


def test_preconditions_with_the_same_parameter_names_cannot_be_combined(schema) -> None:  # type: ignore[no-untyped-def]
    # One would silently check the other's row.
    first = row_unchanged(schema.outbox, {"event_id": "a"})
    second = row_unchanged(schema.outbox, {"event_id": "b"})
    with pytest.raises(ValueError, match="distinct parameter names"):
        all_hold(first, second)
