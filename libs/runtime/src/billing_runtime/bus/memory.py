"""In-process bus for the embedded mode: the same semantics as the RabbitMQ bus (topic fan-out, each
queue on its own, bounded redelivery, then dead letters), with ``publish`` as the confirm.

``publish`` returns only after every matching consumer handled the message; if a handler failed it
raises instead, so the outbox keeps the row and its relay publishes it again on a later pass (the
queues that already handled it are skipped then). Nothing waits in memory for a retry: whatever
happens to the process, an event is either handled by every consumer or still in its outbox.

A handler that fails because a dependency is down (``is_outage``) fails the publish without counting
a delivery, and the queue is reported paused (``check``) until one of its handlers succeeds again.
After ``max_deliveries`` other failures the message is dead-lettered for that queue: logged, kept in
``dead_letters``, and ``publish`` raises ``DeadLettered`` (once every other queue is done with it) so
the relay keeps the outbox row, marked, for the dead-letters CLI to list and replay.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from billing_runtime.bus.base import TARGET_QUEUES_HEADER, DeadLettered, Handler, Message, topic_matches
from billing_runtime.bus.letters import DeadLetterStats
from billing_runtime.unavailable import is_outage

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)


class HandlerFailed(Exception):
    """A consumer failed on the message; it stays with its publisher, which publishes it again."""


class ConsumerUnavailable(HandlerFailed):
    """A consumer's dependency is down: the message stays with its publisher, no delivery counted."""


@dataclass
class _Subscription:
    queue: str
    binding_keys: list[str]
    handler: Handler


@dataclass
class MemoryBus:
    max_deliveries: int = 5
    outage: Callable[[BaseException], bool] = is_outage
    dead_letters: list[tuple[str, Message]] = field(default_factory=list)
    _subscriptions: dict[str, _Subscription] = field(default_factory=dict)
    # Messages some queue failed on, by id: the queues done with it (handled or dead-lettered), each
    # failing queue's deliveries so far, and the queues that dead-lettered it (with why). Only messages
    # in that state are here.
    _done: dict[str, set[str]] = field(default_factory=dict)
    _failures: dict[tuple[str, str], int] = field(default_factory=dict)
    _dead: dict[str, dict[str, str]] = field(default_factory=dict)
    # Queues whose last failure was an outage and that have not handled a message since: why.
    _paused: dict[str, str] = field(default_factory=dict)
    # The publishers' outboxes (service → its engine and table), registered by each relaying
    # ``Plumbing``: an event not yet handled, or dead-lettered, waits there, not in this bus, so the
    # status endpoint (``billing_runtime.status``) reads a queue's depth and dead letters from them.
    outboxes: dict[str, tuple[AsyncEngine, Table]] = field(default_factory=dict)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def publish(self, message: Message) -> None:
        done = self._done.get(message.message_id, set())
        targets = message.headers.get(TARGET_QUEUES_HEADER)
        only = set(targets.split(",")) if targets else None
        failed: list[str] = []
        unavailable = False
        for sub in list(self._subscriptions.values()):
            if sub.queue in done or (only is not None and sub.queue not in only):
                continue
            if not any(topic_matches(key, message.routing_key) for key in sub.binding_keys):
                continue
            outcome = await self._deliver(sub, message)
            if outcome == "failed":
                failed.append(sub.queue)
                continue
            if outcome == "unavailable":
                failed.append(sub.queue)
                unavailable = True
                continue
            done.add(sub.queue)
        if failed:
            self._done[message.message_id] = done
            error = ConsumerUnavailable if unavailable else HandlerFailed
            raise error(f"{message.message_id} failed in {', '.join(failed)}; it will be published again")
        self._done.pop(message.message_id, None)
        dead = self._dead.pop(message.message_id, None)
        if dead:
            raise DeadLettered(message.message_id, dead)

    async def publish_many(self, messages: list[Message]) -> list[BaseException | None]:
        # One at a time: each publish runs the consumers, and in-process they must see events in order.
        # A message that fails (or is dead-lettered) does not hold back the ones behind it, as on
        # RabbitMQ; while a consumer is unavailable the rest of the batch would only fail the same way.
        results: list[BaseException | None] = []
        for message in messages:
            if results and isinstance(results[-1], ConsumerUnavailable):
                results.append(ConsumerUnavailable("not published: a consumer is unavailable"))
                continue
            try:
                await self.publish(message)
            except Exception as exc:
                results.append(exc)
            else:
                results.append(None)
        return results

    async def stop_consuming(self, within: float) -> None:
        """Nothing to stop: a message reaches the consumers only inside ``publish``, i.e. inside a relay
        pass, and the relays' own stop ends those (each pass completes or leaves its rows in the
        outbox). The consumers stay subscribed for the relays' final passes."""
        return None

    async def subscribe(self, queue: str, binding_keys: list[str], handler: Handler) -> None:
        existing = self._subscriptions.get(queue)
        keys = list(binding_keys) if existing is None else [*existing.binding_keys, *binding_keys]
        # Re-subscribing a queue (a restarted consumer) replaces its handler, as a new AMQP consumer would.
        self._subscriptions[queue] = _Subscription(queue, list(dict.fromkeys(keys)), handler)

    def consumers(self, queue: str) -> int:
        """1 while a handler is subscribed to the queue in this process, else 0."""
        return 1 if queue in self._subscriptions else 0

    def bindings(self, queue: str) -> list[str]:
        sub = self._subscriptions.get(queue)
        return list(sub.binding_keys) if sub is not None else []

    async def queue_depth(self, queue: str) -> int | None:
        """None: nothing waits in-process; an event not yet handled is still in its publisher's outbox."""
        return None

    async def dead_letter_stats(self, queue: str) -> DeadLetterStats | None:
        """None: in-process dead letters are kept in the publishers' outboxes, counted from there."""
        return None

    def paused(self) -> dict[str, str]:
        """The queues whose consumer is waiting out an outage, with the reason."""
        return dict(self._paused)

    async def check(self) -> None:
        for queue, reason in self._paused.items():
            raise ConnectionError(f"consumer of {queue} paused by an outage: {reason}")

    async def _deliver(self, sub: _Subscription, message: Message) -> str:
        """ "done" when the queue is done with the message (handled, or dead-lettered at the limit),
        "unavailable" when its dependency is down, "failed" when it failed on a healthy system."""
        key = (sub.queue, message.message_id)
        try:
            await sub.handler(message)
        except Exception as exc:
            if self.outage(exc):
                if sub.queue not in self._paused:
                    log.warning("consumer of %s paused: a dependency is unavailable (%s)", sub.queue, exc)
                self._paused[sub.queue] = f"{type(exc).__name__}: {exc}"[:300]
                return "unavailable"
            self._resume(sub.queue)
            delivery = self._failures.get(key, 0) + 1
            if delivery < self.max_deliveries:
                log.warning(
                    "handler of %s failed on %s (delivery %d)", sub.queue, message.message_id, delivery, exc_info=exc
                )
                self._failures[key] = delivery
                return "failed"
            log.error(
                "dead-lettering event %s (routing key %s) of %s after %d deliveries: %s",
                message.message_id,
                message.routing_key,
                sub.queue,
                delivery,
                exc,
                exc_info=exc,
            )
            self.dead_letters.append((sub.queue, message))
            self._dead.setdefault(message.message_id, {})[sub.queue] = f"{type(exc).__name__}: {exc}"[:500]
        else:
            self._resume(sub.queue)
        self._failures.pop(key, None)
        return "done"

    def _resume(self, queue: str) -> None:
        if self._paused.pop(queue, None) is not None:
            log.warning("consumer of %s resumed", queue)
