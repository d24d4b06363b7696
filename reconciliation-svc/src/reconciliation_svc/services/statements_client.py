"""The client of providers-svc's statements (INTERNAL.md "Reconciliation"): NDJSON of
``StatementRecord``, one per line, ending with ``{"complete": true}``. A stream that ends without that
line, a line that is not a record of the account asked for, or an unavailable providers-svc fails the
run: nothing partial is ever taken for the whole statement (REC-21)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
from billing_contracts.statements import StatementRecord
from billing_runtime import tracing
from billing_runtime.internal_auth import INTERNAL_HEADER, sign_internal
from pydantic import ValidationError

from reconciliation_svc.domain.runs import RunFailed

log = logging.getLogger(__name__)
ISSUER = "reconciliation"
AUDIENCE = "providers"
_COMPLETE = {"complete": True}


def _instant(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class StatementsClient:
    """Reads one statement at a time over the session the caller owns (opened in a cleanup context or
    by the command line)."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, secret: str, timeout: float) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._secret = secret
        # No total: a long statement streams for as long as it takes, but never stalls longer than this.
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)

    async def records(self, account_id: str, read_from: datetime, read_to: datetime) -> AsyncIterator[StatementRecord]:
        token = sign_internal(self._secret, issuer=ISSUER, audience=AUDIENCE, tenant_id=None)
        params = {"account_id": account_id, "from": _instant(read_from), "to": _instant(read_to)}
        try:
            async with self._session.get(
                f"{self._base_url}/internal/statements",
                params=params,
                headers=tracing.with_trace({INTERNAL_HEADER: token, "Accept": "application/x-ndjson"}),
                timeout=self._timeout,
            ) as response:
                if response.status == 404:
                    raise RunFailed("account_not_found", f"providers-svc knows no provider account {account_id!r}")
                if response.status != 200:
                    raise RunFailed(
                        "provider_unavailable", f"providers-svc answered {response.status} for the statement"
                    )
                complete = False
                number = 0
                async for raw in response.content:
                    number += 1
                    if not raw.strip():
                        continue
                    if complete:
                        raise RunFailed("statement_invalid", f"line {number} follows the statement's final line")
                    record = _record(raw, number)
                    if record is None:
                        complete = True
                        continue
                    if record.account_id != account_id:
                        raise RunFailed(
                            "statement_invalid", f"line {number} is a record of account {record.account_id!r}"
                        )
                    yield record
                if not complete:
                    raise RunFailed(
                        "statement_incomplete", f"the statement ended after {number} lines without its final line"
                    )
        except ValueError as exc:
            # aiohttp's line reader refuses a line longer than its buffer: no record is that long.
            raise RunFailed("statement_invalid", f"a line of the statement is too long ({exc})") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("statement of %s unavailable: %r", account_id, exc)
            raise RunFailed("provider_unavailable", f"the statement could not be read: {type(exc).__name__}") from exc


def _record(raw: bytes, number: int) -> StatementRecord | None:
    """The record on one line, or None for the final line."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise RunFailed("statement_invalid", f"line {number} is not JSON") from None
    if data == _COMPLETE:
        return None
    try:
        return StatementRecord.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        raise RunFailed("statement_invalid", f"line {number} is no statement record ({where}: {err['msg']})") from None
