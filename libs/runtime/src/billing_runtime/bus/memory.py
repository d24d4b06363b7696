"""In-process bus for the embedded mode: the same semantics as the RabbitMQ bus (topic fan-out,
bounded retries, then dead letters), with ``publish`` as the confirm.

``publish`` returns only after every matching consumer handled the message (or, when a handler
failed, after the retry was scheduled). The outbox deletes its row only after ``publish`` returns, so
a successfully handled event can never be lost by stopping the process; what sits in memory is only a
retry of a handler that already failed once, and ``close`` gives those a chance to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from billing_runtime.bus.base import Handler, Message, topic_matches

log = logging.getLogger(__name__)


@dataclass
class _Subscription:
    queue: str
    binding_keys: list[str]
    handler: Handler


@dataclass
class MemoryBus:
    max_deliveries: int = 5
    retry_delay: float = 0.2
    dead_letters: list[tuple[str, Message]] = field(default_factory=list)
    _subscriptions: dict[str, _Subscription] = field(default_factory=dict)
    _retries: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        deadline = asyncio.get_running_loop().time() + 5
        # A retry may schedule the next one, so wait until none is left (or the deadline passes).
        while self._retries and asyncio.get_running_loop().time() < deadline:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait(set(self._retries), timeout=deadline - asyncio.get_running_loop().time())
        for task in list(self._retries):
            task.cancel()

    async def publish(self, message: Message) -> None:
        for sub in list(self._subscriptions.values()):
            if any(topic_matches(key, message.routing_key) for key in sub.binding_keys):
                await self._deliver(sub, message, 1)

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

    async def _deliver(self, sub: _Subscription, message: Message, delivery: int) -> None:
        try:
            await sub.handler(message)
        except Exception:
            log.exception("handler of %s failed on %s (delivery %d)", sub.queue, message.message_id, delivery)
            if delivery >= self.max_deliveries:
                self.dead_letters.append((sub.queue, message))
                return
            task = asyncio.get_running_loop().create_task(self._retry(sub.queue, message, delivery + 1))
            self._retries.add(task)
            task.add_done_callback(self._retries.discard)

    async def _retry(self, queue: str, message: Message, delivery: int) -> None:
        await asyncio.sleep(self.retry_delay * delivery)
        sub = self._subscriptions.get(queue)
        if sub is not None:
            await self._deliver(sub, message, delivery)
