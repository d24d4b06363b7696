"""The bus interface. Two implementations: RabbitMQ (distributed) and in-process (embedded)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from billing_runtime.bus.letters import DeadLetterStats


@dataclass(frozen=True)
class Message:
    """One event on the bus. ``message_id`` is the event id: consumers dedupe on it."""

    routing_key: str
    body: bytes
    message_id: str
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Message], Awaitable[None]]

# A message carrying this header (comma-separated queue names) goes to those queues only: a replayed
# dead letter of the in-process bus, for the consumers that gave up on it and no other.
TARGET_QUEUES_HEADER = "x-billing-queues"


class DeadLettered(Exception):
    """A ``publish_many`` result of the in-process bus: every consumer is done with the message and
    these queues gave up on it (dead-lettered). The relay keeps its outbox row, marked."""

    def __init__(self, message_id: str, queues: dict[str, str]) -> None:
        super().__init__(f"{message_id} dead-lettered by {', '.join(queues)}")
        self.queues = queues  # queue → why


class Bus(Protocol):
    """Publish with confirmation; consume at least once, with retries and then a dead-letter queue.

    A handler that returns normally acknowledges the message; one that raises gets it redelivered,
    up to ``max_deliveries`` times, and then the message is dead-lettered. A failure that is an outage
    (``billing_runtime.unavailable.is_outage``) is retried without counting towards that limit.
    """

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, message: Message) -> None:
        """Return only once the broker has taken responsibility for the message."""
        ...

    async def publish_many(self, messages: list[Message]) -> list[BaseException | None]:
        """Publish in order; return, per message, None once the broker took it or the error that
        kept it from doing so (a message after a failed one may be left unattempted: an error too),
        or ``DeadLettered`` (in-process bus: handled by all but the queues that gave up on it)."""
        ...

    async def subscribe(self, queue: str, binding_keys: list[str], handler: Handler) -> None: ...

    async def stop_consuming(self, within: float) -> None:
        """Take no more messages and let the handlers of those taken finish (within ``within``
        seconds); what is not handled by then goes back to its queue, or stays with its publisher."""
        ...

    async def check(self) -> None:
        """Raise if the broker is unreachable or a consumer is paused by an outage (readiness)."""
        ...

    def paused(self) -> dict[str, str]:
        """The queues whose consumer is waiting out an outage, with the reason."""
        ...

    async def queue_depth(self, queue: str) -> int | None:
        """Messages ready in the queue, waiting for a consumer (None: not known here, or disconnected)."""
        ...

    async def dead_letter_stats(self, queue: str) -> DeadLetterStats | None:
        """The queue's dead letters held by the broker (None: not known here, or disconnected)."""
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
