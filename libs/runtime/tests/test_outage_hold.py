"""The outage hold on its own: one probe at a time while a dependency is down, everyone resumes on the
first success, and a queue no message is held in any more does not stay 'paused' (readiness failing)."""

from __future__ import annotations

import asyncio
import contextlib

from billing_runtime.bus import Message
from billing_runtime.bus.holding import OutageHold
from billing_runtime.unavailable import DependencyUnavailable, is_outage


async def test_one_probe_at_a_time_and_the_first_success_resumes_every_message() -> None:
    hold = OutageHold("q", is_outage, first_delay=0.01, max_delay=0.05)
    down = [True]
    calls: list[str] = []
    running = [0]
    most = [0]

    async def handler(message: Message) -> None:
        running[0] += 1
        most[0] = max(most[0], running[0])
        try:
            calls.append(message.message_id)
            await asyncio.sleep(0.005)
            if down[0]:
                raise DependencyUnavailable("down")
        finally:
            running[0] -= 1

    first = asyncio.create_task(hold.call(handler, Message("k", b"", "evt_0")))
    while hold.reason is None:
        await asyncio.sleep(0.001)
    most[0] = 0
    others = [asyncio.create_task(hold.call(handler, Message("k", b"", f"evt_{i}"))) for i in range(1, 6)]
    await asyncio.sleep(0.3)
    assert most[0] == 1  # while paused, the messages take turns probing, never all at once
    down[0] = False
    await asyncio.wait_for(asyncio.gather(first, *others), 2)
    assert hold.reason is None
    assert {f"evt_{i}" for i in range(6)} <= set(calls)


async def test_a_queue_left_with_no_held_message_is_no_longer_paused() -> None:
    hold = OutageHold("q", is_outage, first_delay=0.01, max_delay=0.05)

    async def handler(message: Message) -> None:
        raise DependencyUnavailable("down")

    task = asyncio.create_task(hold.call(handler, Message("k", b"", "evt_1")))
    while hold.reason is None:
        await asyncio.sleep(0.001)
    task.cancel()  # its channel closed: the message went back to the broker
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert hold.reason is None
