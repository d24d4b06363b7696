"""Writes queued on a Unit of Work and run together when it commits: one round trip.

``InsertRows``/``UpdateRows`` describe a write by table, columns and values instead of as a built
statement. On a hot path that matters: the statement for a given shape (table, columns, row count)
is built once and reused, so SQLAlchemy neither rebuilds nor re-keys it on every request, and only
the values change. Any Core INSERT/UPDATE/DELETE may be queued as well, at the usual cost.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import (
    CTE,
    ColumnElement,
    Delete,
    Insert,
    Select,
    Table,
    Update,
    and_,
    bindparam,
    exists,
    func,
    literal_column,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.sql import ClauseElement

from billing_runtime.prepared import Executor, InTransaction, execute_statement_alone, run_in


@dataclass(frozen=True)
class InsertRows:
    """INSERT of one or more rows of ``table``, all keyed by the same column keys; in one statement,
    so generated ids follow the list order."""

    table: Table
    rows: Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class UpdateRows:
    """UPDATE ``table`` SET ``values`` WHERE each column in ``where`` equals its value (and each in
    ``where_not`` differs from its value)."""

    table: Table
    where: Mapping[str, Any]
    values: Mapping[str, Any]
    where_not: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Precondition:
    """A condition the database must still satisfy for a guarded unit to write anything: an
    ``exists(...)`` clause built once (every value a named ``bindparam``) and this use's values.

    It is checked inside the guarded statement, before the guard row is inserted. A ``FOR UPDATE``
    in it locks the rows it finds and re-checks them after waiting for a concurrent
    writer, so "the payment is still in the state I read it in" holds for the whole statement:
    optimistic concurrency without a BEGIN, a locking read and a COMMIT."""

    clause: ColumnElement[bool]
    params: Mapping[str, Any]


def _condition(precondition: Precondition | None) -> ColumnElement[bool] | None:
    return precondition.clause if precondition is not None else None


@functools.lru_cache(maxsize=64)
def _row_as_read(table: Table, columns: tuple[str, ...], name: str) -> ColumnElement[bool]:
    # The row is found by its key alone, in a subquery the planner cannot merge into the comparison of
    # the rest (OFFSET 0), then compared. With every column in one WHERE, a plan made on statistics of a
    # smaller table took an index on a version column (the payments' status) as readily as the key's,
    # and read every row in that status to keep one. Locked before it is compared: a concurrent writer
    # is waited for and its version is the one compared, as before.
    key, *version = (table.c[c] for c in columns)
    row = (
        select(*(table.c[c] for c in columns))
        .where(key == bindparam(f"{name}_{key.key}", type_=key.type))
        .offset(literal_column("0"))
        .with_for_update()
        .subquery()
    )
    return exists(
        select(row.c[key.key]).where(*(row.c[c.key] == bindparam(f"{name}_{c.key}", type_=c.type) for c in version))
    )


def row_unchanged(table: Table, values: Mapping[str, Any], *, name: str = "c") -> Precondition:
    """ "The row of ``table`` with these values is still there": with its key first (a unique column:
    the row is looked up by it alone) and a version (status, ``updated_at``) among the rest, "the row is
    exactly as it was read", checked with the row locked. ``name`` prefixes its parameters, so two of
    them can be combined (``all_hold``)."""
    clause = _row_as_read(table, tuple(values), name)
    return Precondition(clause, {f"{name}_{column}": v for column, v in values.items()})


@functools.lru_cache(maxsize=64)
def _all_of(clauses: tuple[ColumnElement[bool], ...]) -> ColumnElement[bool]:
    # Cached so the guarded statement built on it is too (``_guarded`` is cached by its condition).
    return and_(*clauses)


def all_hold(*preconditions: Precondition) -> Precondition:
    """Every one of ``preconditions``, checked in order in the one statement (each locks what it
    reads). Their parameter names must differ (``row_unchanged``'s ``name``)."""
    params: dict[str, Any] = {}
    for precondition in preconditions:
        if not params.keys().isdisjoint(precondition.params):
            # One would silently check the other's row: a programming error, never a runtime condition.
            raise ValueError("preconditions combined with all_hold need distinct parameter names")
        params.update(precondition.params)
    return Precondition(_all_of(tuple(p.clause for p in preconditions)), params)


Write = InsertRows | UpdateRows | Insert | Update | Delete


# A write's shape: what its statement depends on, and the key it is cached by. The two kinds never
# compare equal (their last fields are an int and a tuple), so they can share one cache.
class _InsertShape(NamedTuple):
    table: Table
    keys: tuple[str, ...]
    rows: int


class _UpdateShape(NamedTuple):
    table: Table
    where: tuple[str, ...]
    values: tuple[str, ...]
    where_not: tuple[str, ...]


_Shape = _InsertShape | _UpdateShape


def _shape(write: InsertRows | UpdateRows) -> _Shape:
    if isinstance(write, InsertRows):
        return _insert_shape(write)
    return _UpdateShape(write.table, tuple(write.where), tuple(write.values), tuple(write.where_not))


def _insert_shape(write: InsertRows) -> _InsertShape:
    return _InsertShape(write.table, tuple(write.rows[0]), len(write.rows))


def _params(write: InsertRows | UpdateRows, prefix: str) -> dict[str, Any]:
    if isinstance(write, InsertRows):
        return {f"{prefix}{r}_{k}": v for r, row in enumerate(write.rows) for k, v in row.items()}
    params = {f"{prefix}k_{k}": v for k, v in write.where.items()}
    params.update({f"{prefix}n_{k}": v for k, v in write.where_not.items()})
    params.update({f"{prefix}v_{k}": v for k, v in write.values.items()})
    return params


# Memoized: statements are immutable and depend only on the shape (tables live as long as the
# process), so this is a cache like SQLAlchemy's own compiled cache, not state.
@functools.lru_cache(maxsize=512)
def _statement(shape: _Shape, prefix: str) -> Insert | Update:
    table = shape.table
    if isinstance(shape, _InsertShape):
        keys, count = shape.keys, shape.rows
        return table.insert().values(
            [{k: bindparam(f"{prefix}{r}_{k}", type_=table.c[k].type) for k in keys} for r in range(count)]
            if count > 1
            else {k: bindparam(f"{prefix}0_{k}", type_=table.c[k].type) for k in keys}
        )
    where, values = shape.where, shape.values
    conditions = [table.c[k] == bindparam(f"{prefix}k_{k}", type_=table.c[k].type) for k in where]
    conditions += [table.c[k] != bindparam(f"{prefix}n_{k}", type_=table.c[k].type) for k in shape.where_not]
    return (
        table.update()
        .where(and_(*conditions))
        .values({k: bindparam(f"{prefix}v_{k}", type_=table.c[k].type) for k in values})
    )


def _chain(parts: Sequence[Insert | Update | Delete]) -> Insert | Update | Delete:
    # Every statement but the last becomes a data-modifying CTE of the last one.
    *rest, last = parts
    return last.add_cte(*(part.cte(f"w{i}") for i, part in enumerate(rest)))


@functools.lru_cache(maxsize=256)
def _chained(shapes: tuple[_Shape, ...]) -> Insert | Update | Delete:
    return _chain([_statement(shape, f"w{i}_") for i, shape in enumerate(shapes)])


async def execute_together(session: Executor, writes: Sequence[Write]) -> None:
    """Run independent writes in the session's transaction, in one round trip.

    Every write but the last becomes a data-modifying CTE of the last one (``WITH w0 AS
    (INSERT ...), w1 AS (INSERT ...) UPDATE ...``): PostgreSQL runs each exactly once whether or not
    it is referenced, all against one snapshot and in no set order, and checks foreign keys at the
    end of the statement, so a child row may sit beside its parent. The writes must therefore not
    read each other's effects (no UPDATE of a row another one inserts), and rows whose generated ids
    must follow an order belong in one ``InsertRows``. They commit or roll back with the caller's
    transaction, and they are a single statement, which ``UnitOfWork.commit`` relies on.
    """
    if not writes:
        return
    params: dict[str, Any] = {}
    for i, write in enumerate(writes):
        if isinstance(write, InsertRows | UpdateRows):
            params.update(_params(write, f"w{i}_"))
    if all(isinstance(write, InsertRows | UpdateRows) for write in writes):
        stmt = _chained(tuple(_shape(write) for write in writes))  # type: ignore[arg-type]
        await run_in(session, stmt, params)
        return
    if isinstance(session, InTransaction):
        # A statement built per write carries its values in itself: compiled each time, which is the
        # ORM session's job (a driven unit queues only plain writes).
        raise TypeError("a driven unit of work takes only InsertRows/UpdateRows writes")
    stmt = _chain(
        [
            _statement(_shape(write), f"w{i}_") if isinstance(write, InsertRows | UpdateRows) else write
            for i, write in enumerate(writes)
        ]
    )
    await session.execute(stmt, params or None)


# Guarded writes: the writes happen only if a guard row could be inserted.


def _chained_params(
    writes: Sequence[InsertRows | UpdateRows], guard: InsertRows | None, precondition: Precondition | None = None
) -> dict[str, Any]:
    """The values of a chained (or guarded) statement, keyed as ``_chained``/``_guarded`` name them."""
    params = _params(guard, "g_") if guard is not None else {}
    if precondition is not None:
        params.update(precondition.params)
    for i, write in enumerate(writes):
        params.update(_params(write, f"w{i}_"))
    return params


def _guard_insert(shape: _InsertShape, prefix: str, condition: ColumnElement[bool] | None = None) -> Insert:
    table, keys = shape.table, shape.keys
    values = {k: bindparam(f"{prefix}0_{k}", type_=table.c[k].type) for k in keys}
    if condition is None:
        insert = pg_insert(table).values(values)
    else:
        insert = pg_insert(table).from_select(list(keys), select(*values.values()).where(condition))
    return insert.on_conflict_do_nothing().returning(table.c[keys[0]])


def _if_guard(shape: _Shape, prefix: str, guard: CTE) -> Insert | Update:
    """The write of ``shape``, made to do nothing unless the guard CTE inserted its row."""
    table = shape.table
    inserted = exists(select(guard))
    if isinstance(shape, _UpdateShape):
        update = _statement(shape, prefix)
        assert isinstance(update, Update)
        return update.where(inserted)
    keys, count = shape.keys, shape.rows
    rows = [
        select(*(bindparam(f"{prefix}{r}_{k}", type_=table.c[k].type) for k in keys)).where(inserted)
        for r in range(count)
    ]
    return table.insert().from_select(list(keys), rows[0] if count == 1 else union_all(*rows))


@functools.lru_cache(maxsize=256)
def _guarded(
    guard: _InsertShape, shapes: tuple[_Shape, ...], condition: ColumnElement[bool] | None = None
) -> Select[int]:
    g = _guard_insert(guard, "g_", condition).cte("g")
    parts = [_if_guard(shape, f"w{i}_", g).cte(f"w{i}") for i, shape in enumerate(shapes)]
    return select(func.count()).select_from(g).add_cte(*parts)


async def execute_guarded(
    session: AsyncSession,
    guard: InsertRows,
    writes: Sequence[InsertRows | UpdateRows],
    precondition: Precondition | None = None,
) -> bool:
    """Insert the one-row ``guard`` unless a row with the same unique key exists; only if it was
    inserted, run ``writes`` too. True when it was. Either way in the session's transaction.

    It fuses "claim a key, then write the effect" into one statement (a single
    INSERT ... ON CONFLICT DO NOTHING in a CTE, and every write conditional on it), so the common
    case of a fresh key costs one round trip and is atomic: the guard row and the effect commit
    together or not at all. A concurrent insert of the same key waits for the first one's
    transaction and then finds the row (PostgreSQL's speculative insertion), so exactly one caller
    gets True.
    The same restrictions as ``execute_together`` apply to ``writes``. With a ``precondition`` the
    guard is inserted only if it holds too (so False means: a duplicate, or the condition failed).
    """
    if len(guard.rows) != 1:
        raise ValueError("the guard is exactly one row")
    guard_shape = _insert_shape(guard)
    params = _chained_params(writes, guard, precondition)
    stmt = _guarded(guard_shape, tuple(_shape(write) for write in writes), _condition(precondition))
    _, rows = await run_in(session, stmt, params)
    return bool(rows[0][0])


async def execute_alone(
    engine: AsyncEngine,
    writes: Sequence[InsertRows | UpdateRows],
    guard: InsertRows | None = None,
    precondition: Precondition | None = None,
) -> bool:
    """``execute_together`` (or, with a ``guard``, ``execute_guarded``) as a transaction of its own:
    the single statement commits itself (no BEGIN/COMMIT round trips), and it is
    compiled once per shape and sent as driver SQL, skipping the ORM session and SQLAlchemy's
    per-execution compilation and parameter processing, which cost more than the round trip on the
    hot path. Errors are still SQLAlchemy's (wrapped, connection invalidated on disconnect)."""
    shapes = tuple(_shape(write) for write in writes)
    params = _chained_params(writes, guard, precondition)
    if guard is not None:
        if len(guard.rows) != 1:
            raise ValueError("the guard is exactly one row")
        stmt: ClauseElement = _guarded(_insert_shape(guard), shapes, _condition(precondition))
    elif shapes:
        stmt = _chained(shapes)
    else:
        return True
    rows = await execute_statement_alone(engine, stmt, params)
    return bool(rows[0][0]) if guard is not None else True
