"""The bus interface. Two implementations: RabbitMQ (distributed) and in-process (embedded)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Message:
    """One event on the bus. ``message_id`` is the event id: consumers dedupe on it."""

    routing_key: str
    body: bytes
    message_id: str
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Message], Awaitable[None]]


class Bus(Protocol):
    """Publish with confirmation; consume at least once, with retries and then a dead-letter queue.

    A handler that returns normally acknowledges the message; one that raises gets it redelivered,
    up to ``max_deliveries`` times, and then the message is dead-lettered.
    """

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, message: Message) -> None:
        """Return only once the broker has taken responsibility for the message."""
        ...

    async def publish_many(self, messages: list[Message]) -> list[BaseException | None]:
        """Publish in order; return, per message, None once the broker took it or the error that
        kept it from doing so (a message after a failed one may be left unattempted: an error too)."""
        ...

    async def subscribe(self, queue: str, binding_keys: list[str], handler: Handler) -> None: ...

    async def check(self) -> None:
        """Raise if the broker is unreachable (readiness)."""
        ...


def topic_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching: ``*`` is exactly one word, ``#`` zero or more words."""
    return _match(pattern.split("."), key.split("."))


def _match(pattern: list[str], words: list[str]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[i:]) for i in range(len(words) + 1))
    if not words:
        return False
    return (head in ("*", words[0])) and _match(rest, words[1:])
