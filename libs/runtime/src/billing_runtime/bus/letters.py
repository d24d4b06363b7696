"""Dead letters as data: the headers the bus writes on a message it gives up on, the dead-letter queue
of a queue, and what a listing or the metrics report of them. No broker client here: the in-process bus
(the embedded mode) and the processes that never consume (the gateway) use these without loading
aio-pika; reading and replaying ``<queue>.dlq`` on RabbitMQ is ``bus.dead_letters``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from billing_contracts.envelope import utcnow

from billing_runtime.bus.base import Message

QUEUE_HEADER = "x-billing-queue"
ROUTING_KEY_HEADER = "x-billing-routing-key"
DEAD_AT_HEADER = "x-billing-dead-at"
REASON_HEADER = "x-billing-reason"
DELIVERIES_HEADER = "x-billing-deliveries"
REPLAYED_HEADER = "x-billing-replayed-at"
# Headers of ours (and the broker's own record), dropped from a message before it is dead-lettered or replayed.
OUR_HEADERS = (QUEUE_HEADER, ROUTING_KEY_HEADER, DEAD_AT_HEADER, REASON_HEADER, DELIVERIES_HEADER, "x-death")


def dlq_name(queue: str) -> str:
    return f"{queue}.dlq"


def dead_letter_headers(message: Message, queue: str, exc: BaseException, deliveries: int) -> dict[str, str]:
    """The message's headers plus why and when the bus gave up on it (the error's type and message, cut
    short: enough to triage, not a dump of the handler's state)."""
    headers = {k: v for k, v in message.headers.items() if k not in ("x-delivery-count", *OUR_HEADERS)}
    headers.update(
        {
            QUEUE_HEADER: queue,
            ROUTING_KEY_HEADER: message.routing_key,
            DEAD_AT_HEADER: utcnow().isoformat(),
            REASON_HEADER: f"{type(exc).__name__}: {exc}"[:500],
            DELIVERIES_HEADER: str(deliveries),
        }
    )
    return headers


@dataclass(frozen=True)
class DeadLetterStats:
    depth: int
    oldest: datetime | None


@dataclass(frozen=True)
class DeadLetter:
    event_id: str
    routing_key: str
    queue: str
    dead_at: datetime | None
    reason: str
    deliveries: int | None
