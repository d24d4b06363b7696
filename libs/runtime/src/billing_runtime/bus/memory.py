"""In-process bus for the embedded mode: the same semantics as the RabbitMQ bus (topic fan-out, each
queue on its own, bounded redelivery, then dead letters), with ``publish`` as the confirm.

``publish`` returns only after every matching consumer handled the message; if a handler failed it
raises instead, so the outbox keeps the row and its relay publishes it again on a later pass (the
queues that already handled it are skipped then). Nothing waits in memory for a retry: whatever
happens to the process, an event is either handled by every consumer or still in its outbox. After
``max_deliveries`` failures of one queue the message goes to that queue's dead letters (logged), as
RabbitMQ's delivery limit sends it to the queue's DLQ.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from billing_runtime.bus.base import Handler, Message, topic_matches

log = logging.getLogger(__name__)


class HandlerFailed(Exception):
    """A consumer failed on the message; it stays with its publisher, which publishes it again."""


@dataclass
class _Subscription:
    queue: str
    binding_keys: list[str]
    handler: Handler


@dataclass
class MemoryBus:
    max_deliveries: int = 5
    dead_letters: list[tuple[str, Message]] = field(default_factory=list)
    _subscriptions: dict[str, _Subscription] = field(default_factory=dict)
    # Messages some queue failed on, by id: the queues done with it (handled or dead-lettered), and
    # each failing queue's deliveries so far. Only messages in that state are here.
    _done: dict[str, set[str]] = field(default_factory=dict)
    _failures: dict[tuple[str, str], int] = field(default_factory=dict)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def publish(self, message: Message) -> None:
        done = self._done.get(message.message_id, set())
        failed: list[str] = []
        for sub in list(self._subscriptions.values()):
            if sub.queue in done or not any(topic_matches(key, message.routing_key) for key in sub.binding_keys):
                continue
            if await self._deliver(sub, message):
                done.add(sub.queue)
            else:
                failed.append(sub.queue)
        if failed:
            self._done[message.message_id] = done
            raise HandlerFailed(f"{message.message_id} failed in {', '.join(failed)}; it will be published again")
        self._done.pop(message.message_id, None)

    async def publish_many(self, messages: list[Message]) -> list[BaseException | None]:
        # One at a time: each publish runs the consumers, and in-process they must see events in order.
        results: list[BaseException | None] = []
        for message in messages:
            if results and results[-1] is not None:
                results.append(ConnectionError("not published: an earlier message failed"))
                continue
            try:
                await self.publish(message)
            except Exception as exc:
                results.append(exc)
            else:
                results.append(None)
        return results

    async def subscribe(self, queue: str, binding_keys: list[str], handler: Handler) -> None:
        existing = self._subscriptions.get(queue)
        keys = list(binding_keys) if existing is None else [*existing.binding_keys, *binding_keys]
        # Re-subscribing a queue (a restarted consumer) replaces its handler, as a new AMQP consumer would.
        self._subscriptions[queue] = _Subscription(queue, list(dict.fromkeys(keys)), handler)

    async def check(self) -> None:
        return None

    async def _deliver(self, sub: _Subscription, message: Message) -> bool:
        """True when the queue is done with the message: handled, or dead-lettered at the limit."""
        key = (sub.queue, message.message_id)
        try:
            await sub.handler(message)
        except Exception:
            delivery = self._failures.get(key, 0) + 1
            log.exception("handler of %s failed on %s (delivery %d)", sub.queue, message.message_id, delivery)
            if delivery < self.max_deliveries:
                self._failures[key] = delivery
                return False
            self.dead_letters.append((sub.queue, message))
        self._failures.pop(key, None)
        return True
