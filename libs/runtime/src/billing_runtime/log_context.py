"""What a log record is about (request id, tenant id, payment id, event id), kept in a context variable
so every record written while handling one request or one bus message carries it without being passed
down: the HTTP middlewares and the bus consumer wrapper bind it, the log formatters read it.

A context variable, not a global: each request and each delivery runs in its own asyncio task (or
binds and resets around its handler), so two requests never see each other's fields. Within a request
or a delivery, code binds without resetting (the tenant once authenticated, the payment once the
event is read): the outermost scope (``request_id_middleware``, ``plumbing.observed``) resets it all."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar, Token
from types import MappingProxyType

# The fields a record may carry, in the order the text format prints them.
FIELDS = ("request_id", "tenant_id", "payment_id", "event_id", "queue")

_EMPTY: Mapping[str, str] = MappingProxyType({})
_context: ContextVar[Mapping[str, str]] = ContextVar("billing_log_context", default=_EMPTY)


def log_context() -> Mapping[str, str]:
    """The fields bound in the current context (read-only)."""
    return _context.get()


def bind(**fields: str | None) -> Token[Mapping[str, str]]:
    """Add ``fields`` (None values are skipped) to the current context; ``unbind`` with the token
    restores what was there before, whatever was bound in between."""
    current = _context.get()
    given = {k: v for k, v in fields.items() if v}
    return _context.set(MappingProxyType({**current, **given}) if given else current)


def unbind(token: Token[Mapping[str, str]]) -> None:
    _context.reset(token)


@contextlib.contextmanager
def bound(**fields: str | None) -> Iterator[None]:
    token = bind(**fields)
    try:
        yield
    finally:
        unbind(token)
