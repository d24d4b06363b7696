"""A driven unit of work (``UnitOfWork.driven``): the same unit as with an ORM session (its statements,
its queued writes and its outbox rows commit together or not at all) with its transaction sent by
asyncpg itself. Errors come out as SQLAlchemy's, a dropped connection is an outage, a cancelled unit
never hands its connection on, and nothing of the ORM can be reached from it by mistake."""

from __future__ import annotations

import asyncio
import contextlib
import secrets

import asyncpg
import pytest
from billing_runtime.db import make_sessionmaker
from billing_runtime.outages import is_database_outage
from billing_runtime.prepared import InTransaction, fetch_alone, fetch_prepared
from billing_runtime.uow import UnitOfWork
from billing_runtime.writes import InsertRows
from sqlalchemy import bindparam, func, insert, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from .test_driver import BACKEND, SLEEP, _cancelled_mid_statement, _terminate
from .test_outbox_relay import _event


class TestDrivenUnits:
    @pytest.fixture(autouse=True)
    def _statements(self, schema) -> None:  # type: ignore[no-untyped-def]
        self.schema = schema
        applied = schema.applied.c.event_id
        self.add = insert(schema.applied).values(event_id=bindparam("id")).returning(applied)
        self.like = select(applied).where(applied.like(bindparam("p")))
        self.outboxed = select(func.count().label("n")).select_from(schema.outbox)

    def unit(self, engine: AsyncEngine) -> UnitOfWork:
        return UnitOfWork(make_sessionmaker(engine), self.schema.outbox)

    async def ids(self, engine: AsyncEngine, prefix: str) -> list[str]:
        return sorted(r["event_id"] for r in await fetch_alone(engine, self.like, {"p": f"{prefix}%"}))

    async def outbox_rows(self, engine: AsyncEngine) -> int:
        [row] = await fetch_alone(engine, self.outboxed, {})
        return int(row["n"])

    async def test_statements_writes_and_events_commit_together_without_a_session(self, engine: AsyncEngine) -> None:
        prefix = secrets.token_hex(4)
        async with self.unit(engine).driven() as unit:
            assert isinstance(unit.statements, InTransaction)
            assert await fetch_prepared(unit.statements, self.add, {"id": f"{prefix}-1"}) == [
                {"event_id": f"{prefix}-1"}
            ]
            # Its own statements see one another before the commit; nobody else does.
            assert [r["event_id"] for r in await fetch_prepared(unit.statements, self.like, {"p": f"{prefix}%"})] == [
                f"{prefix}-1"
            ]
            assert await self.ids(engine, prefix) == []
            unit.write(InsertRows(self.schema.applied, ({"event_id": f"{prefix}-2"},)))
            unit.emit(_event(1))
            with pytest.raises(RuntimeError, match="no ORM session"):
                _ = unit.session
            await unit.commit()
            with pytest.raises(RuntimeError, match="ends with its commit"):
                _ = unit.statements
        assert await self.ids(engine, prefix) == [f"{prefix}-1", f"{prefix}-2"]
        assert await self.outbox_rows(engine) == 1

    async def test_leaving_without_commit_keeps_nothing(self, engine: AsyncEngine) -> None:
        prefix = secrets.token_hex(4)
        async with self.unit(engine).driven() as unit:
            await fetch_prepared(unit.statements, self.add, {"id": f"{prefix}-1"})
            unit.write(InsertRows(self.schema.applied, ({"event_id": f"{prefix}-2"},)))
            unit.emit(_event(1))
        assert await self.ids(engine, prefix) == []
        assert await self.outbox_rows(engine) == 0

    async def test_a_rollback_discards_and_the_unit_goes_on_in_a_new_transaction(self, engine: AsyncEngine) -> None:
        prefix = secrets.token_hex(4)
        async with self.unit(engine).driven() as unit:
            await fetch_prepared(unit.statements, self.add, {"id": f"{prefix}-1"})
            unit.emit(_event(1))
            await unit.rollback()
            await fetch_prepared(unit.statements, self.add, {"id": f"{prefix}-2"})
            await unit.commit()
        assert await self.ids(engine, prefix) == [f"{prefix}-2"]
        assert await self.outbox_rows(engine) == 0

    async def test_a_failing_statement_is_sqlalchemys_error_and_the_connection_serves_on(
        self, one_connection: AsyncEngine
    ) -> None:
        prefix = secrets.token_hex(4)
        [before] = await fetch_alone(one_connection, BACKEND, {})

        async def attempt() -> None:
            async with self.unit(one_connection).driven() as unit:
                await fetch_prepared(unit.statements, self.add, {"id": f"{prefix}-1"})
                await fetch_prepared(unit.statements, self.add, {"id": f"{prefix}-1"})

        with pytest.raises(sa_exc.IntegrityError) as caught:
            await attempt()
        assert getattr(caught.value.orig, "sqlstate", None) == "23505"
        assert await self.ids(one_connection, prefix) == []
        # The same pooled connection, out of the aborted transaction (else this would fail with 25P02).
        [after] = await fetch_alone(one_connection, BACKEND, {})
        assert after["pid"] == before["pid"]

    async def test_a_failing_commit_keeps_nothing(self, engine: AsyncEngine) -> None:
        prefix = secrets.token_hex(4)

        async def attempt() -> None:
            async with self.unit(engine).driven() as unit:
                await fetch_prepared(unit.statements, self.add, {"id": f"{prefix}-1"})
                unit.write(InsertRows(self.schema.applied, ({"event_id": f"{prefix}-1"},)))
                unit.emit(_event(1))
                await unit.commit()

        with pytest.raises(sa_exc.IntegrityError):
            await attempt()
        assert await self.ids(engine, prefix) == []
        assert await self.outbox_rows(engine) == 0

    async def test_an_error_of_the_caller_is_raised_as_it_is_and_rolls_back(self, engine: AsyncEngine) -> None:
        prefix = secrets.token_hex(4)

        async def attempt() -> None:
            async with self.unit(engine).driven() as unit:
                await fetch_prepared(unit.statements, self.add, {"id": f"{prefix}-1"})
                raise LookupError("decided against it")

        with pytest.raises(LookupError):
            await attempt()
        assert await self.ids(engine, prefix) == []

    async def test_a_connection_dropped_mid_unit_is_an_outage_and_keeps_nothing(
        self, one_connection: AsyncEngine
    ) -> None:
        prefix = secrets.token_hex(4)

        async def attempt() -> None:
            async with self.unit(one_connection).driven() as unit:
                [row] = await fetch_prepared(unit.statements, BACKEND, {})
                await fetch_prepared(unit.statements, self.add, {"id": f"{prefix}-1"})
                await _terminate(int(row["pid"]))
                unit.emit(_event(1))
                await unit.commit()

        with pytest.raises(sa_exc.DBAPIError) as caught:
            await attempt()
        assert is_database_outage(caught.value)
        assert await self.ids(one_connection, prefix) == []
        assert await self.outbox_rows(one_connection) == 0

    async def test_asyncpg_losing_track_of_its_protocol_is_a_lost_connection(self, one_connection: AsyncEngine) -> None:
        """asyncpg raises its InternalClientError when a statement begins as the server's message ending
        the session comes in (a race a terminated backend shows now and then): the connection is
        dropped, never handed on, and the error is an outage like any lost connection."""
        [before] = await fetch_alone(one_connection, BACKEND, {})

        async def attempt() -> None:
            async with self.unit(one_connection).driven() as unit:
                await fetch_prepared(unit.statements, BACKEND, {})
                raise asyncpg.InternalClientError("cannot switch to state 11; another operation (2) is in progress")

        with pytest.raises(sa_exc.DBAPIError) as caught:
            await attempt()
        assert is_database_outage(caught.value)
        [after] = await fetch_alone(one_connection, BACKEND, {})
        assert after["pid"] != before["pid"]

    async def test_a_callers_error_on_a_lost_connection_never_hands_the_connection_on(
        self, one_connection: AsyncEngine
    ) -> None:
        """The connection dies while the unit waits on something else (a provider's API), which then
        fails: the caller hears its own error, and the next caller a working connection, not the dead one."""
        [before] = await fetch_alone(one_connection, BACKEND, {})

        async def attempt() -> None:
            async with self.unit(one_connection).driven() as unit:
                [row] = await fetch_prepared(unit.statements, BACKEND, {})
                await _terminate(int(row["pid"]))
                await asyncio.sleep(0.1)  # the server's goodbye arrives
                raise LookupError("the provider did not answer")

        with pytest.raises(LookupError):
            await attempt()
        [after] = await fetch_alone(one_connection, BACKEND, {})
        assert after["pid"] != before["pid"]

    async def test_a_statement_error_caught_inside_is_never_taken_for_a_commit(
        self, one_connection: AsyncEngine
    ) -> None:
        """A unit that catches a failed statement's error and commits anyway: PostgreSQL rolled the
        transaction back, and the commit says so instead of passing for one."""
        prefix = secrets.token_hex(4)
        [before] = await fetch_alone(one_connection, BACKEND, {})

        async def attempt() -> None:
            async with self.unit(one_connection).driven() as unit:
                await fetch_prepared(unit.statements, self.add, {"id": f"{prefix}-1"})
                with contextlib.suppress(asyncpg.UniqueViolationError):
                    await fetch_prepared(unit.statements, self.add, {"id": f"{prefix}-1"})
                # Nothing queued: COMMIT is the next statement (a queued write would fail first).
                await unit.commit()

        with pytest.raises(RuntimeError, match="not committed"):
            await attempt()
        assert await self.ids(one_connection, prefix) == []
        [after] = await fetch_alone(one_connection, BACKEND, {})
        assert after["pid"] == before["pid"]  # out of the transaction, it serves on

    async def test_a_second_commit_with_nothing_queued_changes_nothing(self, engine: AsyncEngine) -> None:
        prefix = secrets.token_hex(4)
        async with self.unit(engine).driven() as unit:
            await fetch_prepared(unit.statements, self.add, {"id": f"{prefix}-1"})
            await unit.commit()
            await unit.commit()
            unit.emit(_event(1))
            with pytest.raises(RuntimeError, match="ends with its commit"):
                await unit.commit()
        assert await self.ids(engine, prefix) == [f"{prefix}-1"]
        assert await self.outbox_rows(engine) == 0

    async def test_a_cancelled_unit_never_hands_its_connection_on(self, one_connection: AsyncEngine) -> None:
        async def sleep() -> None:
            async with self.unit(one_connection).driven() as unit:
                await fetch_prepared(unit.statements, SLEEP, {})

        await _cancelled_mid_statement(one_connection, sleep)

    async def test_only_plain_writes_are_queued(self, engine: AsyncEngine) -> None:
        prefix = secrets.token_hex(4)

        async def attempt() -> None:
            async with self.unit(engine).driven() as unit:
                await fetch_prepared(unit.statements, self.add, {"id": f"{prefix}-1"})
                unit.write(insert(self.schema.applied).values(event_id=f"{prefix}-2"))
                await unit.commit()

        with pytest.raises(TypeError, match="InsertRows/UpdateRows"):
            await attempt()
        assert await self.ids(engine, prefix) == []

    async def test_a_session_bound_to_a_connection_keeps_its_session(self, engine: AsyncEngine) -> None:
        """Tests that roll back a connection's transaction bind their sessions to it: a driven unit
        then runs in that session, inside the test's transaction."""
        prefix = secrets.token_hex(4)
        async with engine.connect() as connection:
            outer = await connection.begin()
            unit = UnitOfWork(async_sessionmaker(bind=connection), self.schema.outbox)
            async with unit.driven() as driven:
                assert not isinstance(driven.statements, InTransaction)
                await fetch_prepared(driven.statements, self.add, {"id": f"{prefix}-1"})
                await driven.commit()
            await outer.rollback()
        assert await self.ids(engine, prefix) == []
