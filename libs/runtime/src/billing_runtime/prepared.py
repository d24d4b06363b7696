"""Statements built once and sent as driver SQL compiled once: in a session's transaction (``*_prepared``),
as a transaction of their own (``*_alone``: the statement commits itself, no BEGIN and COMMIT), or as
a unit of a few statements sent by asyncpg itself (``transaction_alone``). On the hot paths SQLAlchemy's
per-execution work (the cache-key walk of a statement, the ORM session, the execution context) cost
more than the round trip; what the caller sees stays SQLAlchemy's (its types, its errors)."""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Insert,
    Select,
    String,
    Update,
    any_,
    bindparam,
    func,
    literal_column,
    select,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.selectable import ScalarSelect

from billing_runtime.driver import driver_fetch, driver_transaction

T = TypeVar("T")
# What ``fixed`` writes into a statement: a word of ours, never anything a client sent.
_WORD = re.compile(r"[a-z][a-z0-9_.]*")
# A SELECT of any columns (SQLAlchemy 2.1 types a select by the tuple of its columns' types).
AnySelect = Select[*tuple[Any, ...]]
# A SELECT, or a UNION of them (``union_all(select(a), select(b))``), whose rows come back typed.
AnyQuery = AnySelect | CompoundSelect[*tuple[Any, ...]]


def fixed(word: str) -> ColumnElement[str]:
    """``word`` written into the statement as a string literal, where a comparison with a Python
    constant is otherwise a bound parameter (``provider == "stripe"``): PostgreSQL's generic plan of a
    prepared statement, the one every statement here ends up with, cannot prove a partial index's
    predicate (``WHERE provider = 'stripe'``) from a parameter, whatever its value, and falls back to
    another index or a scan. Only for the code's own words (checked)."""
    if not _WORD.fullmatch(word):
        raise ValueError(f"not a word to write into SQL: {word!r}")
    return literal_column(f"'{word}'", type_=String())


def bound(word: str) -> ColumnElement[str]:
    """``word`` as a bound parameter (its value carried by the statement), the opposite of ``fixed``: for
    a lookup by a whole unique key that includes it (``(account_id, object, stripe_id) = (…, 'invoice',
    …)``), where the key's index is the only right one. Written into the statement, the word would let
    the planner prove a partial index's predicate (``WHERE object = 'invoice'``) and, with its estimates
    of a table not analysed yet (a new database, a table that grew since), walk every row of the
    account in that index instead of one entry of the key's: linear in the account's history."""
    return bindparam(None, word, type_=String())


def picked_once(column: ColumnElement[Any], rows: AnySelect) -> ColumnElement[bool]:
    """``column = ANY(ARRAY(rows))``: the rows a claim takes (``rows``, a ``LIMIT``ed ``FOR UPDATE SKIP
    LOCKED`` select of that column), picked by one run of the subquery. Not ``column IN (rows)``: there
    the planner may make the subquery the inner side of a nested loop over the whole table, run it again
    for every row, each run picking rows the last had locked or passed, so one claim takes every due row,
    not a batch, in time quadratic in them; it does so with statistics taken while the table held next to
    no live rows (a queue's, whose rows come and go), once it has filled (a backlog after an outage)."""
    return column == any_(func.array(rows.scalar_subquery()))


def opaque_limit(limit: ColumnElement[int]) -> ScalarSelect[int]:
    """``LIMIT (SELECT :limit)``: a claim's batch size, hidden from the planner, for a claim that must
    walk its table in key order (an index scan) and stop at the batch. Seen, the size made PostgreSQL
    plan a queue whose statistics said next to no rows were due (taken while it was empty, or never
    taken) as a scan of the whole heap and a sort: a heap full of the rows already published (deleted,
    not yet vacuumed: a minute of them at a few hundred a second) read on every pass, thousands of pages
    for a batch. The index scan steps over the entries of deleted rows, and marks them dead as it
    passes (a bitmap or a sequential scan never does), so the next pass skips them unread, except on
    the pages still being written (a B-tree marks only a page unchanged since read): those the relay's
    own vacuum clears (``billing_runtime.outbox_vacuum``)."""
    return select(limit).scalar_subquery()


@dataclass(frozen=True)
class _Prepared:
    """A statement compiled once to driver SQL, with its parameters' order and bind processors, and
    for a SELECT its columns' keys and result processors."""

    sql: str
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]
    # The values the statement itself carries (``column == "pending"``), for names not in ``params``.
    fixed: Mapping[str, Any]
    columns: tuple[str, ...] = ()
    results: tuple[Callable[[Any], Any] | None, ...] = ()

    def args(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        values = (params[name] if name in params else self.fixed[name] for name in self.names)
        return tuple(
            value if process is None else process(value) for value, process in zip(values, self.processors, strict=True)
        )


@functools.lru_cache(maxsize=256)
def _prepared(stmt: ClauseElement, dialect: Dialect) -> _Prepared:
    compiled = stmt.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)  # a DML or SELECT statement compiles to SQL
    names = tuple(compiled.positiontup or ())
    processors = tuple(compiled.binds[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names)
    fixed = {n: compiled.binds[n].value for n in names if not compiled.binds[n].required}
    if isinstance(stmt, Select | CompoundSelect):
        selected = list(stmt.selected_columns)
    elif isinstance(stmt, Insert | Update) and stmt._returning:
        selected = list(stmt.exported_columns)  # an INSERT/UPDATE ... RETURNING: typed rows as a SELECT's
    else:
        return _Prepared(str(compiled), names, processors, fixed)
    return _Prepared(
        str(compiled),
        names,
        processors,
        fixed,
        tuple(str(c.key) for c in selected),
        tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in selected),
    )


class InTransaction:
    """The statements of a unit in a transaction sent by asyncpg itself (``transaction_alone``, a
    driven ``UnitOfWork``): each built once and reused (as for ``fetch_prepared``), sent as driver SQL
    on the unit's connection. Every ``*_prepared`` helper takes one where it takes a session."""

    def __init__(self, connection: Any, dialect: Dialect) -> None:
        self.connection = connection
        self.dialect = dialect

    async def fetch(self, stmt: ClauseElement, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """A SELECT's (or a RETURNING's) rows, typed, as dicts by column key."""
        return _typed_rows(*await run_in(self, stmt, params))

    async def rows(self, stmt: ClauseElement, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The statement's rows as the driver returns them (no result processing)."""
        _, rows = await run_in(self, stmt, params)
        return [tuple(row) for row in rows]


# Where a unit's statements go: an ORM session's transaction, or a driven one's connection.
Executor = AsyncSession | InTransaction


async def run_in(session: Executor, stmt: ClauseElement, params: Mapping[str, Any]) -> tuple[_Prepared, list[Any]]:
    """``stmt`` (built once and reused) in the session's transaction, as driver SQL compiled once: no
    per-execution cache-key walk of the statement, which for a chained or guarded statement of many
    parameters cost more than the round trip. Raw rows back."""
    if isinstance(session, InTransaction):
        prepared = _prepared(stmt, session.dialect)
        return prepared, list(await session.connection.fetch(prepared.sql, *prepared.args(params)))
    conn = await session.connection()
    prepared = _prepared(stmt, conn.dialect)
    result = await conn.exec_driver_sql(prepared.sql, prepared.args(params))
    return prepared, list(result.fetchall()) if result.returns_rows else []


async def run_alone(engine: AsyncEngine, stmt: ClauseElement, params: Mapping[str, Any]) -> tuple[_Prepared, list[Any]]:
    """``run_in`` as a transaction of its own (the statement commits itself: no BEGIN and COMMIT),
    sent by asyncpg itself on a pooled connection (``billing_runtime.driver``)."""
    prepared = _prepared(stmt, engine.dialect)
    return prepared, await driver_fetch(engine, prepared.sql, prepared.args(params))


def _typed_rows(prepared: _Prepared, rows: Sequence[Any]) -> list[dict[str, Any]]:
    return [
        {
            key: value if process is None else process(value)
            for key, process, value in zip(prepared.columns, prepared.results, row, strict=True)
        }
        for row in rows
    ]


async def fetch_prepared(session: Executor, query: AnyQuery, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Run ``query`` (built once and reused, every value a named ``bindparam``) in the session's
    transaction and return its rows as dicts by column key, with the columns' types applied, but
    without the ORM: for the reads on the hot paths, where loading ORM objects through
    ``session.execute`` cost more than the query."""
    return _typed_rows(*await run_in(session, query, params))


async def fetch_alone(engine: AsyncEngine, query: AnySelect, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``fetch_prepared`` outside any transaction: a read that needs no lock and no
    consistency with writes after it costs one round trip."""
    return _typed_rows(*await run_alone(engine, query, params))


async def returning_alone(
    engine: AsyncEngine, stmt: Insert | Update, params: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """One INSERT/UPDATE ... RETURNING (built once and reused, as for ``fetch_prepared``) as a
    transaction of its own, its rows typed as a SELECT's: for a write that is safe alone (an insert
    that ignores a conflict, an update guarded by its WHERE) and whose result the caller decides on."""
    return _typed_rows(*await run_alone(engine, stmt, params))


async def returning_prepared(
    session: Executor, stmt: Insert | Update, params: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """``returning_alone`` in the session's transaction (a session bound to a connection: tests)."""
    return _typed_rows(*await run_in(session, stmt, params))


async def transaction_alone(engine: AsyncEngine, work: Callable[[InTransaction], Awaitable[T]]) -> T:
    """``work``'s statements in one transaction of their own, sent by asyncpg itself
    (``billing_runtime.driver.driver_transaction``): BEGIN and COMMIT are the only round trips added to
    the statements', and errors are SQLAlchemy's as for every ``*_alone`` helper."""
    return await driver_transaction(engine, lambda connection: work(InTransaction(connection, engine.dialect)))


async def execute_statement_alone(
    engine: AsyncEngine, stmt: ClauseElement, params: Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    """Run one statement as a transaction of its own (it commits itself: no BEGIN and
    COMMIT round trips) and return its rows, if any (raw driver values: no result processing).

    ``stmt`` must be built once and reused (it is compiled once per object, then sent as driver SQL),
    with every value a ``bindparam`` named in ``params``; a list goes in as one array parameter
    (``= ANY(...)``), never as an IN list whose length would change the SQL."""
    _, rows = await run_alone(engine, stmt, params)
    return [tuple(row) for row in rows]
