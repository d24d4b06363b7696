"""The line every service process logs when it starts: what it is, where it listens, and what it
talks to (database, broker), with no password or other secret in it."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from yarl import URL

log = logging.getLogger("billing_runtime.startup")


def describe_database(url: str) -> str:
    """``postgresql postgres@db.internal:5432/payments``; ``postgresql postgres@/run/pg/payments`` on a
    Unix socket (the embedded mode's server); never the password."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "unparseable database URL"
    backend = parsed.get_backend_name()
    user = f"{parsed.username}@" if parsed.username else ""
    port = f":{parsed.port}" if parsed.port else ""
    socket = parsed.query.get("host")
    host = parsed.host or (socket if isinstance(socket, str) else None) or "localhost"
    return f"{backend} {user}{host}{port}/{parsed.database or ''}"


def describe_bus(url: str) -> str:
    """``memory (in-process)`` or ``rabbitmq guest@broker:5672 vhost /``; never the password."""
    if url.startswith("memory:"):
        return "memory (in-process)"
    parsed = URL(url)
    user = f"{parsed.user}@" if parsed.user else ""
    port = f":{parsed.port}" if parsed.port else ""
    vhost = parsed.path[1:] if len(parsed.path) > 1 else "/"
    kind = "rabbitmq" if parsed.scheme in ("amqp", "amqps") else parsed.scheme
    return f"{kind} {user}{parsed.host}{port} vhost {vhost}"


def startup_line(
    service: str,
    role: str,
    listeners: Iterable[tuple[str, int]],
    *,
    database_url: str | None = None,
    bus_url: str | None = None,
    extra: Iterable[str] = (),
) -> str:
    parts = [f"{service} {role} starting", "listening on " + ", ".join(f"{h}:{p}" for h, p in listeners)]
    parts.append("database " + (describe_database(database_url) if database_url else "none"))
    if bus_url is not None:
        parts.append("bus " + describe_bus(bus_url))
    parts.extend(extra)
    return "; ".join(parts)


def log_startup(
    service: str,
    role: str,
    listeners: Iterable[tuple[str, int]],
    *,
    database_url: str | None = None,
    bus_url: str | None = None,
    extra: Iterable[str] = (),
) -> None:
    log.info(
        "%s",
        startup_line(service, role, listeners, database_url=database_url, bus_url=bus_url, extra=extra),
    )
