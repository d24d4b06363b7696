"""Turn "the database cannot be reached" into a 503 problem rather than a 500."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from billing_runtime.problems import ProblemError
from sqlalchemy import exc as sa_exc

log = logging.getLogger(__name__)

# SQLSTATE classes that mean the server cannot serve us: connection exception, insufficient resources,
# operator intervention, system error, unknown database, rejected login. Anything else is a bug (500).
_OUTAGE_SQLSTATE_CLASSES = frozenset({"08", "53", "57", "58", "3D", "28"})


def is_database_outage(exc: BaseException) -> bool:
    # asyncpg raises connection failures (refused, reset, timed out) without SQLAlchemy wrapping them.
    if isinstance(exc, (OSError, TimeoutError, sa_exc.TimeoutError)):
        return True
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    if exc.connection_invalidated or isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)):
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate[:2] in _OUTAGE_SQLSTATE_CLASSES


@web.middleware
async def database_unavailable_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except Exception as exc:
        if not is_database_outage(exc):
            raise
        log.warning("database unavailable on %s %s: %r", request.method, request.path, exc)
        raise ProblemError(
            503,
            "database_unavailable",
            "The gateway's database is unavailable; retry later",
            headers={"Retry-After": "5"},
        ) from exc
