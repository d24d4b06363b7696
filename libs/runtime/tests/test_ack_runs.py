"""Acknowledgements in runs (``billing_runtime.bus.acks``): what frames a channel is sent for each
order in which handlers finish. The broker's side of it is in ``test_rabbit_bus.py``."""

import asyncio
from dataclasses import dataclass, field

from billing_runtime.bus.acks import AckRuns


@dataclass
class FakeChannel:
    is_closed: bool = False
    frames: list[tuple[int, bool]] = field(default_factory=list)

    async def basic_ack(self, delivery_tag: int, multiple: bool = False, wait: bool = True) -> None:
        assert wait is False  # queued for the writer, never awaited until written
        self.frames.append((delivery_tag, multiple))


@dataclass
class FakeMessage:
    delivery_tag: int
    channel: FakeChannel


def _messages(channel: FakeChannel, n: int) -> list[FakeMessage]:
    return [FakeMessage(tag, channel) for tag in range(1, n + 1)]


async def _turns(n: int = 3) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


class TestRuns:
    async def test_handlers_finishing_together_share_one_multiple_ack(self) -> None:
        channel = FakeChannel()
        acks = AckRuns()
        for message in reversed(_messages(channel, 5)):  # any order within the loop's turn
            acks.done(message)
        await _turns()
        assert channel.frames == [(5, True)]

    async def test_a_run_stops_before_a_delivery_still_running(self) -> None:
        channel = FakeChannel()
        acks = AckRuns(linger=60)
        m = _messages(channel, 4)
        for message in (m[0], m[1], m[3]):
            acks.done(message)
        await _turns()
        # 3 is still running: a multiple ack of 4 would settle it too.
        assert channel.frames == [(2, True)]
        acks.done(m[2])
        await _turns()
        assert channel.frames == [(2, True), (4, True)]

    async def test_settled_deliveries_are_passed_over_never_named(self) -> None:
        channel = FakeChannel()
        acks = AckRuns()
        m = _messages(channel, 4)
        acks.done(m[0])
        acks.settled(m[1])  # nacked: requeued by its own frame, already sent
        acks.done(m[2])
        acks.settled(m[3])
        await _turns()
        # The run's ack names a delivery the consumer still holds (3), never the nacked 4.
        assert channel.frames == [(3, True)]
        acks.done(FakeMessage(5, channel))
        await _turns()
        assert channel.frames == [(3, True), (5, True)]

    async def test_only_settled_deliveries_send_nothing(self) -> None:
        channel = FakeChannel()
        acks = AckRuns()
        for message in _messages(channel, 3):
            acks.settled(message)
        acks.done(FakeMessage(99, channel))  # far ahead: not a run yet
        await _turns()
        assert channel.frames == []

    async def test_finished_deliveries_behind_a_slow_one_are_acked_on_their_own_after_the_linger(self) -> None:
        channel = FakeChannel()
        acks = AckRuns(linger=0.02)
        m = _messages(channel, 4)
        for message in m[1:]:
            acks.done(message)
        await _turns()
        assert channel.frames == []
        await asyncio.sleep(0.1)
        assert channel.frames == [(2, False), (3, False), (4, False)]
        # The slow one finishes: its run passes over the three already acked and names it alone.
        acks.done(m[0])
        await _turns()
        assert channel.frames[3:] == [(1, True)]

    async def test_flush_acks_everything_finished_at_once(self) -> None:
        channel = FakeChannel()
        acks = AckRuns(linger=60)
        m = _messages(channel, 5)
        for message in (m[0], m[1], m[3], m[4]):
            acks.done(message)
        await acks.flush()
        assert sorted(channel.frames) == [(2, True), (4, False), (5, False)]

    async def test_a_closed_channel_is_sent_nothing_and_a_new_one_counts_from_one(self) -> None:
        old, new = FakeChannel(), FakeChannel()
        acks = AckRuns()
        acks.done(FakeMessage(1, old))
        old.is_closed = True  # reconnected before the run went out: the broker took these back
        acks.done(FakeMessage(1, new))
        acks.done(FakeMessage(2, new))
        await _turns()
        assert old.frames == []
        assert new.frames == [(2, True)]

    async def test_channels_are_counted_apart(self) -> None:
        a, b = FakeChannel(), FakeChannel()
        acks = AckRuns()
        acks.done(FakeMessage(1, a))
        acks.done(FakeMessage(2, a))
        acks.done(FakeMessage(2, b))
        await _turns()
        assert a.frames == [(2, True)]
        assert b.frames == []  # b's 1 is still running


@dataclass
class QueueingChannel(FakeChannel):
    """A channel whose frame for one tag waits for room in a full write queue (aiormq's is bounded), so
    a frame sent after it could be written first."""

    held_tag: int = 0
    room: asyncio.Event = field(default_factory=asyncio.Event)

    async def basic_ack(self, delivery_tag: int, multiple: bool = False, wait: bool = True) -> None:
        if delivery_tag == self.held_tag:
            await self.room.wait()  # waiting for room in the write queue
        self.frames.append((delivery_tag, multiple))


class TestOrder:
    async def test_a_later_run_never_overtakes_an_ack_still_waiting_to_be_written(self) -> None:
        channel = QueueingChannel(held_tag=1)
        acks = AckRuns(linger=60)
        acks.done(FakeMessage(1, channel))
        await _turns()  # the run of 1 is waiting for room
        acks.done(FakeMessage(2, channel))
        acks.done(FakeMessage(3, channel))
        stop = asyncio.create_task(acks.flush())  # a stop's flush meanwhile
        await _turns()
        assert channel.frames == []  # nothing may pass the waiting frame: ack(3) first would settle 1
        channel.room.set()
        await stop
        await _turns()
        assert channel.frames == [(1, True), (3, True)]

    async def test_a_straggler_ack_is_written_before_the_run_that_passes_over_it(self) -> None:
        channel = QueueingChannel(held_tag=2)
        acks = AckRuns(linger=0.01)
        acks.done(FakeMessage(2, channel))  # 1 still running: 2 is a straggler
        await asyncio.sleep(0.05)  # its own ack is waiting for room
        acks.done(FakeMessage(1, channel))
        acks.done(FakeMessage(3, channel))
        await _turns()
        assert channel.frames == []  # the run names 3: written first, it would settle 2 before 2's own ack
        channel.room.set()
        await asyncio.sleep(0.05)
        assert channel.frames == [(2, False), (3, True)]


@dataclass
class StalledChannel(FakeChannel):
    """A channel whose connection's writer takes nothing any more: queuing a frame never finishes."""

    async def basic_ack(self, delivery_tag: int, multiple: bool = False, wait: bool = True) -> None:
        await asyncio.Event().wait()


class TestBounds:
    async def test_a_flush_never_waits_longer_than_its_bound_on_a_stalled_writer(self) -> None:
        channel = StalledChannel()
        acks = AckRuns(linger=60, send_timeout=0.05)
        for message in _messages(channel, 3):
            acks.done(message)
        await _turns()  # the run of 3 is stuck queuing its frame
        acks.done(FakeMessage(5, channel))  # a straggler behind 4, still running
        # A stop's flush: it waits for the stuck run (at most its bound), then tries the straggler (its
        # bound again), and returns; nothing was sent, and nothing hangs.
        await asyncio.wait_for(acks.flush(), timeout=2)
        assert channel.frames == []

    async def test_after_a_frame_that_could_not_be_queued_the_next_run_settles_its_tags(self) -> None:
        channel = QueueingChannel(held_tag=2)
        acks = AckRuns(linger=60, send_timeout=0.05)
        m = _messages(channel, 2)
        for message in m:
            acks.done(message)
        await asyncio.sleep(0.2)  # the run of 2 gave up queuing: no frame for 1 and 2 went out
        assert channel.frames == []
        acks.done(FakeMessage(3, channel))
        await _turns()
        # The next run's multiple ack names 3, which settles 1 and 2 as well: nothing is left unacked.
        assert channel.frames == [(3, True)]

    async def test_close_stops_the_background_sends(self) -> None:
        # The tests share one event loop (pyproject: session scope): tasks other tests left running on
        # it are not this test's to judge, so only the tasks started here are.
        before = asyncio.all_tasks()
        channel = StalledChannel()
        acks = AckRuns(linger=0.01, send_timeout=60)
        acks.done(FakeMessage(2, channel))  # a straggler: its own ack is sent by a timer's task
        acks.done(FakeMessage(3, FakeChannel()))
        await asyncio.sleep(0.05)
        background = list(asyncio.all_tasks() - before)
        assert background  # a send stuck on the stalled writer
        acks.close()
        await asyncio.sleep(0)
        await asyncio.wait(background, timeout=1)
        assert all(t.done() for t in background)
