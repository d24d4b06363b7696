"""What a consumer treats as an outage (wait, the message is not at fault) rather than a poison message
(retry a few times, then dead-letter): its database down, or a service it calls answering "unavailable"."""

from __future__ import annotations

from billing_runtime.errors import ProblemError
from billing_runtime.outages import is_database_outage

# Statuses of a called service that say "not now" rather than "not this request".
_UNAVAILABLE_STATUSES = frozenset({502, 503, 504})


class DependencyUnavailable(Exception):
    """Raise it from a handler when something it needs is down: the bus holds the message and retries
    it in place (without spending a delivery) until the dependency answers again."""


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` (or one it was raised ``from``) means a dependency is unavailable. Only explicit
    causes count, not the implicit context: an error raised while handling an outage may be a bug."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DependencyUnavailable) or is_database_outage(current):
            return True
        if isinstance(current, ProblemError) and current.status in _UNAVAILABLE_STATUSES:
            return True
        current = current.__cause__
    return False
