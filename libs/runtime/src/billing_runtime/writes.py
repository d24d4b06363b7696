"""Writes queued on a Unit of Work and run together when it commits: one round trip on PostgreSQL.

``InsertRows``/``UpdateRows`` describe a write by table, columns and values instead of as a built
statement. On a hot path that matters: the statement for a given shape (table, columns, row count)
is built once and reused, so SQLAlchemy neither rebuilds nor re-keys it on every request, and only
the values change. Any Core INSERT/UPDATE/DELETE may be queued as well, at the usual cost.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Delete, Insert, Table, Update, and_, bindparam
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True)
class InsertRows:
    """INSERT of one or more rows of ``table``, all keyed by the same column keys; in one statement,
    so generated ids follow the list order."""

    table: Table
    rows: Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class UpdateRows:
    """UPDATE ``table`` SET ``values`` WHERE each column in ``where`` equals its value."""

    table: Table
    where: Mapping[str, Any]
    values: Mapping[str, Any]


Write = InsertRows | UpdateRows | Insert | Update | Delete
_Shape = tuple[Hashable, ...]


def _shape(write: InsertRows | UpdateRows) -> _Shape:
    if isinstance(write, InsertRows):
        return ("insert", write.table, tuple(write.rows[0]), len(write.rows))
    return ("update", write.table, tuple(write.where), tuple(write.values))


def _params(write: InsertRows | UpdateRows, prefix: str) -> dict[str, Any]:
    if isinstance(write, InsertRows):
        return {f"{prefix}{r}_{k}": v for r, row in enumerate(write.rows) for k, v in row.items()}
    params = {f"{prefix}k_{k}": v for k, v in write.where.items()}
    params.update({f"{prefix}v_{k}": v for k, v in write.values.items()})
    return params


# Memoized: statements are immutable and depend only on the shape (tables live as long as the
# process), so this is a cache like SQLAlchemy's own compiled cache, not state.
@functools.lru_cache(maxsize=512)
def _statement(shape: _Shape, prefix: str) -> Insert | Update:
    kind, table, *rest = shape
    assert isinstance(table, Table)
    if kind == "insert":
        keys, count = rest
        return table.insert().values(
            [{k: bindparam(f"{prefix}{r}_{k}", type_=table.c[k].type) for k in keys} for r in range(count)]
            if count > 1
            else {k: bindparam(f"{prefix}0_{k}", type_=table.c[k].type) for k in keys}
        )
    where, values = rest
    return (
        table.update()
        .where(and_(*(table.c[k] == bindparam(f"{prefix}k_{k}", type_=table.c[k].type) for k in where)))
        .values({k: bindparam(f"{prefix}v_{k}", type_=table.c[k].type) for k in values})
    )


def _chain(parts: Sequence[Insert | Update | Delete]) -> Insert | Update | Delete:
    # Every statement but the last becomes a data-modifying CTE of the last one.
    *rest, last = parts
    return last.add_cte(*(part.cte(f"w{i}") for i, part in enumerate(rest)))


@functools.lru_cache(maxsize=256)
def _chained(shapes: tuple[_Shape, ...]) -> Insert | Update | Delete:
    return _chain([_statement(shape, f"w{i}_") for i, shape in enumerate(shapes)])


async def execute_together(session: AsyncSession, writes: Sequence[Write]) -> None:
    """Run independent writes in the session's transaction, in one round trip on PostgreSQL.

    There, every write but the last becomes a data-modifying CTE of the last one (``WITH w0 AS
    (INSERT ...), w1 AS (INSERT ...) UPDATE ...``): PostgreSQL runs each exactly once whether or not
    it is referenced, all against one snapshot and in no set order, and checks foreign keys at the
    end of the statement, so a child row may sit beside its parent. The writes must therefore not
    read each other's effects (no UPDATE of a row another one inserts), and rows whose generated ids
    must follow an order belong in one ``InsertRows``. Elsewhere (SQLite) they run one by one, in
    order. Either way they commit or roll back with the caller's transaction, and either way they
    are a single statement on PostgreSQL, which ``UnitOfWork.commit`` relies on.
    """
    if not writes:
        return
    if session.get_bind().dialect.name != "postgresql":
        for write in writes:
            if isinstance(write, InsertRows | UpdateRows):
                await session.execute(_statement(_shape(write), "w0_"), _params(write, "w0_"))
            else:
                await session.execute(write)
        return
    params: dict[str, Any] = {}
    for i, write in enumerate(writes):
        if isinstance(write, InsertRows | UpdateRows):
            params.update(_params(write, f"w{i}_"))
    if all(isinstance(write, InsertRows | UpdateRows) for write in writes):
        stmt = _chained(tuple(_shape(write) for write in writes))  # type: ignore[arg-type]
    else:
        stmt = _chain(
            [
                _statement(_shape(write), f"w{i}_") if isinstance(write, InsertRows | UpdateRows) else write
                for i, write in enumerate(writes)
            ]
        )
    await session.execute(stmt, params or None)
