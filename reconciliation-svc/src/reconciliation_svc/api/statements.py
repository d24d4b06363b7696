"""Handlers of ``/admin/reconciliation/statements``: import a provider's settlement file
(``multipart/form-data``: ``provider``, ``account_id``, ``file``), read an imported statement.

The file is streamed to a spooled temporary file (memory holds at most ``SPOOL_IN_MEMORY`` of it),
hashed on the way, and parsed from there (services/imports.py): the upload's size is bounded by
``statement_max_bytes``, not by the service's JSON body limit.
"""

from __future__ import annotations

import hashlib
import tempfile
from typing import IO

from aiohttp import BodyPartReader, ClientPayloadError, web
from aiohttp.http_exceptions import BadHttpMessage
from billing_runtime.errors import ProblemError

from reconciliation_svc.api.run_schemas import field_problem, statement_json, valid_account_id, valid_object_id
from reconciliation_svc.api.runs import engine_of
from reconciliation_svc.db import statements as statement_queries
from reconciliation_svc.domain.settlement_csv import FORMATS
from reconciliation_svc.keys import settings_key
from reconciliation_svc.services.imports import import_settlement

SPOOL_IN_MEMORY = 1024 * 1024
CHUNK = 64 * 1024
# The text fields are short; more than this is not a provider, an account id or a name.
MAX_FIELD_BYTES = 200
TEXT_FIELDS = ("provider", "account_id", "created_by")


async def _text(part: BodyPartReader) -> str:
    data = bytearray()
    while chunk := await part.read_chunk(MAX_FIELD_BYTES + 1):
        data.extend(chunk)
        if len(data) > MAX_FIELD_BYTES:
            raise field_problem(part.name or "field", f"is longer than {MAX_FIELD_BYTES} bytes")
    try:
        return data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise field_problem(part.name or "field", "is not UTF-8 text") from None


async def _spool(part: BodyPartReader, spool: IO[bytes], limit: int) -> str:
    """Copy the file part into ``spool``; its SHA-256."""
    digest = hashlib.sha256()
    size = 0
    while chunk := await part.read_chunk(CHUNK):
        size += len(chunk)
        if size > limit:
            raise ProblemError(413, "statement_too_large", f"A settlement file may hold at most {limit} bytes.")
        digest.update(chunk)
        spool.write(chunk)
    return digest.hexdigest()


async def _read_form(
    request: web.Request, spool: IO[bytes], limit: int
) -> tuple[dict[str, str], str | None, str | None]:
    """The text fields, and the file spooled into ``spool`` (its SHA-256 and name; None without one)."""
    fields: dict[str, str] = {}
    sha256: str | None = None
    filename: str | None = None
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise field_problem("body", "nested multipart bodies are not taken")
        if part.name == "file":
            if sha256 is not None:
                raise field_problem("file", "is given twice")
            filename = (part.filename or "")[:255] or None
            sha256 = await _spool(part, spool, limit)
        elif part.name in TEXT_FIELDS:
            fields[part.name] = await _text(part)
        else:
            raise field_problem(part.name or "body", "unknown field")
    return fields, sha256, filename


async def create(request: web.Request) -> web.Response:
    if request.content_type != "multipart/form-data":
        raise ProblemError(
            415, "unsupported_media_type", "Send the file as multipart/form-data (fields provider, account_id, file)"
        )
    settings = request.app[settings_key]
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
        try:
            fields, sha256, filename = await _read_form(request, spool, settings.statement_max_bytes)
        except (ValueError, AssertionError, ClientPayloadError, BadHttpMessage) as exc:
            # aiohttp's multipart reader raises these on a body that is not the multipart it says: no
            # boundary, no opening boundary, a part cut short. The client's error, never a 500.
            raise ProblemError(
                400, "malformed_multipart", f"The body is not a well-formed multipart/form-data: {exc}"
            ) from None
        provider = fields.get("provider")
        if provider not in FORMATS:
            raise field_problem("provider", f"must be one of {', '.join(sorted(FORMATS))}")
        account_id = fields.get("account_id", "")
        if not valid_account_id(account_id):
            raise field_problem("account_id", "must be a provider account id (1-40 of A-Z a-z 0-9 _ -)")
        if sha256 is None:
            raise field_problem("file", "is required")
        spool.seek(0)
        imported = await import_settlement(
            engine_of(request),
            provider=provider,
            account_id=account_id,
            source=spool,
            sha256=sha256,
            filename=filename,
            created_by=fields.get("created_by") or "admin",
        )
    return web.json_response(statement_json(imported.statement), status=201 if imported.created else 200)


async def get(request: web.Request) -> web.Response:
    statement_id = request.match_info["statement_id"]
    statement = None
    if valid_object_id(statement_id):
        async with engine_of(request).connect() as conn:
            statement = await statement_queries.get_statement(conn, statement_id)
    if statement is None:
        raise ProblemError(404, "not_found", "No such statement.")
    return web.json_response(statement_json(statement))
