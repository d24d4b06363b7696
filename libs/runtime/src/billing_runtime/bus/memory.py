"""In-process bus for the embedded mode: same semantics as RabbitMQ (fan-out by topic, retries, DLQ)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from billing_runtime.bus.base import Handler, Message, topic_matches

log = logging.getLogger(__name__)


@dataclass
class _Queue:
    name: str
    binding_keys: list[str]
    handler: Handler
    pending: asyncio.Queue[tuple[Message, int]] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None


class MemoryBus:
    """Queues live in memory: anything unconsumed when the process stops is still in the outbox-less
    window only between ``publish`` and handling, which is why every publisher uses an outbox and
    deletes the row only after ``publish`` returned; an embedded restart replays nothing it lost there
    except the events the relay already handed over. Use RabbitMQ where that window matters.
    """

    def __init__(self, *, max_deliveries: int = 5, retry_delay: float = 0.2) -> None:
        self._queues: dict[str, _Queue] = {}
        self.max_deliveries = max_deliveries
        self.retry_delay = retry_delay
        self.dead_letters: list[tuple[str, Message]] = []
        self._started = False

    async def start(self) -> None:
        self._started = True
        for queue in self._queues.values():
            self._ensure_worker(queue)

    async def close(self) -> None:
        # Let in-flight handling finish so an accepted event is not dropped mid-way on shutdown.
        for queue in self._queues.values():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(queue.pending.join(), timeout=5)
        for queue in self._queues.values():
            if queue.task is not None:
                queue.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await queue.task
                queue.task = None
        self._started = False

    async def publish(self, message: Message) -> None:
        for queue in self._queues.values():
            if any(topic_matches(key, message.routing_key) for key in queue.binding_keys):
                queue.pending.put_nowait((message, 1))

    async def subscribe(self, queue: str, binding_keys: list[str], handler: Handler) -> None:
        existing = self._queues.get(queue)
        if existing is None:
            existing = _Queue(queue, list(binding_keys), handler)
            self._queues[queue] = existing
        else:
            existing.binding_keys.extend(k for k in binding_keys if k not in existing.binding_keys)
            existing.handler = handler
        if self._started:
            self._ensure_worker(existing)

    async def check(self) -> None:
        return None

    def _ensure_worker(self, queue: _Queue) -> None:
        if queue.task is None or queue.task.done():
            queue.task = asyncio.get_running_loop().create_task(self._work(queue), name=f"bus:{queue.name}")

    async def _work(self, queue: _Queue) -> None:
        while True:
            message, delivery = await queue.pending.get()
            try:
                await queue.handler(message)
            except Exception:
                log.exception("handler of %s failed on %s (delivery %d)", queue.name, message.message_id, delivery)
                if delivery >= self.max_deliveries:
                    self.dead_letters.append((queue.name, message))
                else:
                    asyncio.get_running_loop().call_later(
                        self.retry_delay * delivery, queue.pending.put_nowait, (message, delivery + 1)
                    )
            finally:
                queue.pending.task_done()
