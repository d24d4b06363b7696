"""Tell "the database is down" (answer 503, retry later; a consumer waits) apart from a bug or a bad
message (500; a consumer dead-letters it).

Both mistakes cost money: a real outage classed as a bug answers 500 and dead-letters the provider
outcomes in flight, and a bug classed as an outage makes a consumer hold one poison message forever.
So only what says "the server cannot serve us now" counts, read from the SQLSTATE (never from the
server's message, which ``lc_messages`` translates), the error's severity, and the client library's
own connection errors.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator

import asyncpg
from sqlalchemy import exc as sa_exc

# Whole SQLSTATE classes that mean the server cannot serve anyone: 08 connection exception, 53
# insufficient resources (disk full, out of memory, too many connections), 58 system error (I/O), and
# the ones that mean it cannot serve this service: 3D unknown database, 28 rejected login. A consumer
# must wait through a misconfiguration too rather than dead-letter every message it gets.
_OUTAGE_CLASSES = frozenset({"08", "53", "58", "3D", "28"})
# Single codes from classes that mostly mean something else.
_OUTAGE_CODES = frozenset(
    {
        # 57 operator intervention, but not 57014 query_canceled: a statement that hit statement_timeout
        # or was cancelled ran on a server that answers; a message whose work always times out is poison.
        "57000",  # operator_intervention
        "57P01",  # admin_shutdown: pg_terminate_backend, or a fast shutdown
        "57P02",  # crash_shutdown: another backend crashed and the server is restarting
        "57P03",  # cannot_connect_now: starting up, shutting down, in recovery
        "57P04",  # database_dropped
        "57P05",  # idle_session_timeout: the server ended an idle pooled session
        # The platform never opens a read-only transaction: this is a primary demoted to a standby during
        # a failover, or default_transaction_read_only set by an operator (a disk nearly full).
        "25006",  # read_only_sql_transaction
    }
)
# Codes that are outages only when the server ends the session over them (severity FATAL): 55000
# object_not_in_prerequisite_state is "database ... is not currently accepting connections"
# (ALLOW_CONNECTIONS false) at connect, and a plain ERROR for unrelated states (a sequence's currval
# not yet defined, a replication slot in use ...); 08P01 protocol_violation is FATAL when the byte
# stream broke, and an ERROR for a statement the client got wrong (parameters that do not match).
_FATAL_ONLY_CODES = frozenset({"55000", "08P01"})
_SESSION_ENDING = frozenset({"FATAL", "PANIC"})

# errno values of a connection that cannot be made or was lost (OSError subclasses such as
# FileNotFoundError or PermissionError are not outages of a database reached over the network).
_NETWORK_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.EHOSTDOWN,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.ENETRESET,
        errno.EADDRNOTAVAIL,
        errno.ENOTCONN,
        errno.ESHUTDOWN,
    }
)
# asyncio's create_connection raises a bare OSError with this text when every address of a host name
# failed differently (``localhost``: ::1 and 127.0.0.1).
_ALL_ADDRESSES_FAILED = "Multiple exceptions: "
# asyncpg's InterfaceError for a statement on a connection the server has closed; SQLAlchemy's asyncpg
# dialect recognises a disconnect by the same text.
_CLOSED_CONNECTION = "connection is closed"


def is_database_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says the database (or the connection to it) is unavailable, as opposed to a bug
    in the statement or a state of the data. Looks at ``exc`` itself, not at what caused it."""
    if isinstance(exc, sa_exc.TimeoutError):
        return True  # no pooled connection came free within pool_timeout: every one is stuck or dead
    if isinstance(exc, sa_exc.DBAPIError):
        # SQLAlchemy invalidates the connection when its dialect sees the server gone.
        return exc.connection_invalidated or any(_is_driver_outage(error) for error in _driver_errors(exc))
    return _is_driver_outage(exc)


# A transaction PostgreSQL aborted to break a lock cycle or a serialization conflict: nothing of it was
# written, and running it again (reading afresh) is the documented remedy.
_RETRYABLE_CONFLICTS = frozenset({"40P01", "40001"})


def is_lock_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` is a deadlock or serialization failure: the statement wrote nothing and may be
    decided again from a fresh read."""
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    return any(getattr(error, "sqlstate", None) in _RETRYABLE_CONFLICTS for error in _driver_errors(exc))


# Text PostgreSQL cannot store (a NUL character in a string): the input's fault, never the database's.
_UNSTORABLE_TEXT = frozenset({"22021", "22P05"})


def is_unstorable_text(exc: BaseException) -> bool:
    """Whether ``exc`` says a value of the request is text PostgreSQL refuses (a NUL in a string)."""
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    return any(getattr(error, "sqlstate", None) in _UNSTORABLE_TEXT for error in _driver_errors(exc))


def _driver_errors(exc: sa_exc.DBAPIError) -> Iterator[BaseException]:
    # The DBAPI error, then what it was raised from: SQLAlchemy's asyncpg adapter keeps the SQLSTATE
    # but not the severity, which only asyncpg's own exception carries.
    error: BaseException | None = exc.orig
    for _ in range(3):
        if error is None:
            return
        yield error
        error = error.__cause__


def _is_driver_outage(error: BaseException) -> bool:
    if isinstance(error, OSError | TimeoutError):
        return _is_network_error(error)
    if isinstance(error, asyncpg.InterfaceError):
        return _CLOSED_CONNECTION in str(error)
    sqlstate = getattr(error, "sqlstate", None)
    if not isinstance(sqlstate, str):
        return False
    if sqlstate[:2] in _OUTAGE_CLASSES and sqlstate not in _FATAL_ONLY_CODES:
        return True
    if sqlstate in _OUTAGE_CODES:
        return True
    severity = getattr(error, "severity_en", None) or getattr(error, "severity", None)
    return sqlstate in _FATAL_ONLY_CODES and severity in _SESSION_ENDING


def _is_network_error(error: OSError | TimeoutError) -> bool:
    if isinstance(error, ConnectionError | TimeoutError | socket.gaierror):
        return True
    if error.errno in _NETWORK_ERRNOS:
        return True
    return type(error) is OSError and error.errno is None and str(error).startswith(_ALL_ADDRESSES_FAILED)
