"""Holding a queue through an outage: while a handler fails because a dependency is down, its message
is retried in place and the queue's other messages wait, instead of being returned to the broker.

On RabbitMQ 3.10 quorum queues every return (a nack or reject with requeue, or a channel closing with
the message unacked) raises the message's delivery count, and at ``x-delivery-limit`` the broker
dead-letters it. An outage must not spend that budget: only a message that fails on a healthy system
is returned (and, at the limit, dead-lettered).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from billing_runtime.bus.base import Handler, Message

log = logging.getLogger(__name__)


class HoldExpired(Exception):
    """The message was held through an outage for ``hold_limit``, or the process is stopping; the bus
    hands it back another way before the broker's consumer timeout closes the channel (or the process
    closes it), which would return every unacked message with a delivery spent."""


class OutageHold:
    """The outage state of one queue. While it is on, one message at a time probes the dependency
    (after a backoff that doubles up to ``max_delay``, so recovery is noticed within that bound) and
    every other message of the queue waits its turn; the first success ends the outage for all."""

    def __init__(
        self,
        queue: str,
        is_outage: Callable[[BaseException], bool],
        *,
        first_delay: float = 0.05,
        max_delay: float = 1.0,
        hold_limit: float = 20 * 60.0,
    ) -> None:
        self.queue = queue
        self.is_outage = is_outage
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.hold_limit = hold_limit
        self.reason: str | None = None
        self.since: float | None = None
        self._delay = first_delay
        self._probe = asyncio.Lock()
        # Set by ``stop``: held messages leave (HoldExpired) instead of probing again.
        self._stopping = asyncio.Event()
        # Messages inside ``call``: when the last one leaves (handed back, its channel gone, cancelled)
        # with the outage still on, nobody is left to probe, so the queue stops reporting paused; the
        # next failure pauses it again.
        self._inside = 0

    def stop(self) -> None:
        """The process is stopping: every message held now or later is given up (``HoldExpired``) at
        once rather than after the outage; a message not held runs its handler as before."""
        self._stopping.set()

    async def call(self, handler: Handler, message: Message) -> None:
        """Run the handler until it succeeds or fails for another reason than an outage (raised).

        Raises ``HoldExpired`` once the message has waited through an outage for ``hold_limit``."""
        self._inside += 1
        try:
            await self._call(handler, message)
        finally:
            self._inside -= 1
            if self._inside == 0 and self.reason is not None:
                log.warning("consumer of %s holds no message any more; no longer paused", self.queue)
                self._reset()

    async def _call(self, handler: Handler, message: Message) -> None:
        held_since = time.monotonic()
        while True:
            if self.reason is None:
                try:
                    await handler(message)
                    return
                except Exception as exc:
                    if not self.is_outage(exc):
                        raise
                    self._begin(exc)
                continue
            async with self._probe:
                if self.reason is None:
                    continue  # another message's probe ended the outage while this one waited
                if time.monotonic() - held_since >= self.hold_limit:
                    raise HoldExpired(f"{message.message_id} held {self.hold_limit:.0f}s through an outage")
                await _wait_or_timeout(self._stopping, self._delay)
                if self._stopping.is_set():
                    raise HoldExpired(f"{message.message_id} held through an outage while stopping")
                try:
                    await handler(message)
                except Exception as exc:
                    if not self.is_outage(exc):
                        self._end()  # the dependency answered; this message is at fault, not the system
                        raise
                    self._delay = min(self._delay * 2, self.max_delay)
                    continue
                self._end()
                return

    def _begin(self, exc: BaseException) -> None:
        if self.reason is not None:
            return
        self.reason = f"{type(exc).__name__}: {exc}"[:300]
        self.since = time.monotonic()
        self._delay = self.first_delay
        log.warning("consumer of %s paused: a dependency is unavailable (%s)", self.queue, self.reason)

    def _end(self) -> None:
        if self.reason is None:
            return
        waited = time.monotonic() - (self.since or time.monotonic())
        log.warning("consumer of %s resumed after %.1fs", self.queue, waited)
        self._reset()

    def _reset(self) -> None:
        self.reason = None
        self.since = None
        self._delay = self.first_delay


async def _wait_or_timeout(event: asyncio.Event, seconds: float) -> None:
    """Wait for ``event`` at most ``seconds`` (not ``asyncio.wait_for``: see ``billing_runtime.outbox``)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
