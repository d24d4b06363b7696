"""Importing a settlement file: validated whole, staged in the same transaction, applied only when
every line is good (REC-20). A malformed file changes nothing and is answered with every bad line
(the first ``MAX_ERRORS_SHOWN``, and how many there are). The same file again (same account, same
bytes) is the statement imported the first time."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from billing_contracts.problems import FieldError
from billing_contracts.statements import StatementRecord
from billing_runtime.errors import ProblemError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from reconciliation_svc.db import runs as run_queries
from reconciliation_svc.db import statements as statement_queries
from reconciliation_svc.db.run_models import StatementRow
from reconciliation_svc.domain.settlement_csv import FORMATS, LineError, ParsedLine, parse_settlement

MAX_ERRORS_SHOWN = 20
# Lines parsed per step (in a thread: parsing is CPU work the event loop should not wait on).
PARSE_CHUNK = 2000


@dataclass(frozen=True)
class Imported:
    statement: StatementRow
    created: bool


def invalid_statement(errors: list[LineError], count: int) -> ProblemError:
    first = errors[0]
    detail = f"{count} malformed line{'s' if count != 1 else ''}, nothing was imported; {first}"
    return ProblemError(
        422,
        "invalid_statement",
        detail,
        errors=[
            FieldError(field=f"line {e.line}" + (f" ({e.column})" if e.column else ""), message=e.reason)
            for e in errors
        ],
    )


def _take(items: Iterator[ParsedLine | LineError], count: int) -> list[ParsedLine | LineError]:
    return list(itertools.islice(items, count))


async def import_settlement(
    engine: AsyncEngine,
    *,
    provider: str,
    account_id: str,
    source: Iterable[bytes],
    sha256: str,
    filename: str | None,
    created_by: str,
) -> Imported:
    """Stage ``source`` (a seekable file of the upload) as a statement of ``account_id``."""
    try:
        return await _import(engine, provider, account_id, source, sha256, filename, created_by)
    except IntegrityError:
        # The same file imported concurrently: the other import's statement is this one's.
        async with engine.connect() as conn:
            existing = await statement_queries.find_by_hash(conn, account_id, sha256)
        if existing is None:
            raise
        return Imported(existing, False)


async def _import(
    engine: AsyncEngine,
    provider: str,
    account_id: str,
    source: Iterable[bytes],
    sha256: str,
    filename: str | None,
    created_by: str,
) -> Imported:
    fmt = FORMATS[provider]
    async with engine.begin() as conn:
        existing = await statement_queries.find_by_hash(conn, account_id, sha256)
        if existing is not None:
            return Imported(existing, False)
        known = await run_queries.provider_of_account(conn, account_id)
        if known is not None and known != provider:
            raise ProblemError(
                422,
                "provider_mismatch",
                f"account {account_id} is a {known} account; the file was given as {provider}'s",
                errors=[FieldError(field="provider", message=f"account {account_id} is a {known} account")],
            )
        staging = await statement_queries.create_statement(
            conn,
            provider=provider,
            account_id=account_id,
            origin="csv",
            created_by=created_by,
            filename=filename,
            sha256=sha256,
        )
        items = parse_settlement(fmt, source, account_id)
        errors: list[LineError] = []
        error_count = 0
        while chunk := await asyncio.to_thread(_take, items, PARSE_CHUNK):
            records: list[StatementRecord] = []
            for item in chunk:
                if isinstance(item, LineError):
                    error_count += 1
                    if len(errors) < MAX_ERRORS_SHOWN:
                        errors.append(item)
                elif item.records:
                    records.extend(item.records)
                else:
                    staging.skipped += 1
            # Past the first bad line nothing more is staged (it would be rolled back), but every line
            # is still read, so the answer names all that is wrong at once.
            if error_count == 0:
                await statement_queries.stage_lines(conn, staging, records)
        if error_count:
            # Raised inside the transaction: it rolls back, the statement row with it.
            raise invalid_statement(errors, error_count)
        await statement_queries.finish_statement(conn, staging)
        statement = await statement_queries.get_statement(conn, staging.id)
    assert statement is not None
    return Imported(statement, True)
