"""Tell "a dependency is down" (answer 503, retry later) apart from a bug (500)."""

from __future__ import annotations

from sqlalchemy import exc as sa_exc

# SQLSTATE classes that mean the server cannot serve us: connection exception, insufficient resources,
# operator intervention, system error, unknown database, rejected login. Anything else is a bug (500).
_OUTAGE_SQLSTATE_CLASSES = frozenset({"08", "53", "57", "58", "3D", "28"})


def is_database_outage(exc: BaseException) -> bool:
    # asyncpg raises connection failures (refused, reset, timed out) without SQLAlchemy wrapping them.
    if isinstance(exc, OSError | TimeoutError | sa_exc.TimeoutError):
        return True
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    if exc.connection_invalidated or isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate[:2] in _OUTAGE_SQLSTATE_CLASSES
