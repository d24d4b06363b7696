"""Deliveries handed back unsent keep their place (``services/handbacks.py``), and an ingest still
committing when the worker stops hands its leases back with the rest (``SendSlots.drain``)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from webhook_dispatcher.keys import dispatcher_key
from webhook_dispatcher.services import ingest as ingest_module
from webhook_dispatcher.services.dispatcher import Dispatcher
from webhook_dispatcher.services.handbacks import HandBacks


async def _endpoint(app, auth, hook) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = await app.post("/v1/webhook-endpoints", json={"url": hook.url}, headers=auth())
    assert response.status == 201
    created = dict(await response.json())
    hook.secrets.append(created["secret"])
    return created


class TestHandBacks:
    def test_a_mark_opened_before_a_hand_back_began_is_overtaken_one_opened_after_is_not(self) -> None:
        handbacks = HandBacks()
        before = handbacks.open()
        handbacks.begin("we_a")
        after = handbacks.open()
        assert handbacks.running() == ["we_a"]
        handbacks.end("we_a")
        assert handbacks.running() == []
        assert handbacks.overtakes("we_a", before) and not handbacks.overtakes("we_a", after)
        assert not handbacks.overtakes("we_b", before)
        handbacks.close(before)
        handbacks.close(after)
        # Nothing open any more: no later mark can predate the hand-back, which is forgotten.
        assert not handbacks.overtakes("we_a", handbacks.mark())
        assert handbacks._began == {}

    def test_hand_backs_no_open_mark_predates_are_forgotten_while_others_stay_open(self) -> None:
        # Under steady load some claim or reservation is always open: what is kept must still shrink.
        handbacks = HandBacks()
        oldest = handbacks.open()
        for n in range(100):
            handbacks.begin(f"we_{n}")
            handbacks.end(f"we_{n}")
        newer = handbacks.open()
        handbacks.begin("we_last")
        handbacks.end("we_last")
        handbacks.close(oldest)
        assert set(handbacks._began) == {"we_last"}
        assert handbacks.overtakes("we_last", newer)
        handbacks.close(newer)
        assert handbacks._began == {}

    def test_a_running_hand_back_is_overtaken_whatever_the_mark(self) -> None:
        handbacks = HandBacks()
        handbacks.begin("we_a")
        assert handbacks.overtakes("we_a", handbacks.mark())


class TestOrderKept:
    @pytest.mark.parametrize("lease_at_ingest", [True, False], ids=["leased-at-ingest", "claimed"])
    async def test_a_delivery_leased_while_older_ones_are_handed_back_does_not_overtake_them(
        self, start_app, auth, receiver, publish, eventually, lease_at_ingest: bool
    ) -> None:  # type: ignore[no-untyped-def]
        # One request at a time, each 0.8 s: the second delivery would start with 2.2 s of its 3 s lease
        # left, less than the request timeout plus its margin (2.5 s), so it and the third are handed back.
        hook = await receiver(delay=0.8)
        app = await start_app(
            max_concurrency_per_endpoint=1, lease_seconds=3, request_timeout=2, lease_at_ingest=lease_at_ingest
        )
        await _endpoint(app, auth, hook)
        dispatcher = app.app[dispatcher_key]
        record = dispatcher._recorder.submit
        releasing, gate = asyncio.Event(), asyncio.Event()

        async def slow_hand_back(item, result):  # type: ignore[no-untyped-def]
            if result is None:  # a hand-back, held up as a slow record batch would hold it
                releasing.set()
                await gate.wait()
            return await record(item, result)

        dispatcher._recorder.submit = slow_hand_back
        events = [await publish() for _ in range(3)]
        await asyncio.wait_for(releasing.wait(), 10)
        late = await publish()
        # Before: the new event was leased (at ingest, or by the next claim) and sent in the free slot.
        await asyncio.sleep(1.5)
        assert late.event_id not in hook.ids()
        gate.set()

        async def all_sent() -> bool:
            return set(hook.ids()) == {e.event_id for e in [*events, late]}

        await eventually(all_sent, 20)
        first_sends = list(dict.fromkeys(hook.ids()))
        assert first_sends == [e.event_id for e in [*events, late]]


class TestFailedHandBack:
    async def test_deliveries_that_could_not_be_handed_back_are_still_not_overtaken(
        self, start_app, auth, receiver, publish, eventually
    ) -> None:  # type: ignore[no-untyped-def]
        hook = await receiver(delay=0.8)
        app = await start_app(max_concurrency_per_endpoint=1, lease_seconds=3, request_timeout=2)
        endpoint = await _endpoint(app, auth, hook)
        dispatcher = app.app[dispatcher_key]
        record = dispatcher._recorder.submit
        failed = asyncio.Event()

        async def failing_hand_back(item, result):  # type: ignore[no-untyped-def]
            if result is None and not failed.is_set():
                failed.set()
                raise RuntimeError("the database went away")  # this hand-back only
            return await record(item, result)

        dispatcher._recorder.submit = failing_hand_back
        events = [await publish() for _ in range(3)]
        await asyncio.wait_for(failed.wait(), 10)
        await asyncio.sleep(0.1)
        # The ones not handed back are leased to this worker until they expire: the endpoint stays marked.
        assert endpoint["id"] in dispatcher._handbacks.running()
        late = await publish()

        async def all_sent() -> bool:
            return set(hook.ids()) == {e.event_id for e in [*events, late]}

        await eventually(all_sent, 20)
        assert list(dict.fromkeys(hook.ids())) == [e.event_id for e in [*events, late]]
        assert dispatcher._handbacks.running() == []


class TestStopping:
    async def test_an_ingest_committing_after_the_stop_hands_its_leases_back(
        self, start_app, auth, receiver, publish, clean_db, eventually, monkeypatch
    ) -> None:  # type: ignore[no-untyped-def]
        hook = await receiver()
        first = await start_app(lease_seconds=5, request_timeout=2)
        await _endpoint(first, auth, hook)
        stopping = first.app[dispatcher_key]
        transaction = ingest_module.transaction_alone
        entered, gate = asyncio.Event(), asyncio.Event()

        async def held_up(engine, work):  # type: ignore[no-untyped-def]
            entered.set()
            await gate.wait()  # the ingest's transaction, in flight while the worker stops
            return await transaction(engine, work)

        monkeypatch.setattr(ingest_module, "transaction_alone", held_up)
        await asyncio.sleep(0.2)
        # The in-process bus's publish returns once the consumer has handled the event: not before the gate.
        publishing = asyncio.create_task(publish())
        await asyncio.wait_for(entered.wait(), 5)
        assert stopping._held  # room reserved before the stop
        stopping.stop()
        await asyncio.sleep(0.3)  # the loop has left and is draining
        gate.set()
        event = await asyncio.wait_for(publishing, 5)

        async def handed_back() -> bool:
            async with clean_db.connect() as conn:
                rows = (await conn.execute(text("SELECT claim_token FROM webhook_deliveries"))).all()
            return rows == [(None,)]

        # Before: the lease stayed with the stopped worker until it expired, and the delivery with it.
        await eventually(handed_back)
        assert not stopping._queues
        monkeypatch.setattr(ingest_module, "transaction_alone", transaction)
        started = time.monotonic()
        await start_app(lease_seconds=5, request_timeout=2)

        async def delivered() -> bool:
            return hook.ids() == [event.event_id]

        await eventually(delivered, 5)
        assert time.monotonic() - started < 5  # not after the lease's expiry

    async def test_a_loop_cancelled_without_a_stop_starts_nothing_while_it_drains(
        self, start_app, auth, receiver, publish, eventually
    ) -> None:  # type: ignore[no-untyped-def]
        # One request at a time, the first not answered. The loop is cancelled (no ``stop``); while its
        # drain waits, a claim queues a second delivery behind the first; the loop is cancelled again,
        # so the drain cancels the first: freeing its slot must not start the second as a task nobody
        # awaits (it would run on after ``run`` ended).
        hook = await receiver(delay=30)
        api = await start_app(roles=("api",))
        await _endpoint(api, auth, hook)
        idle = (await start_app(roles=("worker",), worker_concurrency=0)).app[dispatcher_key]
        config = dataclasses.replace(
            idle.config, concurrency=4, per_endpoint=1, request_timeout=10.0, lease=timedelta(seconds=60)
        )
        dispatcher = Dispatcher(idle.uow, idle.box, config, idle.metrics, idle.client)
        await publish()
        running = asyncio.create_task(dispatcher.run())

        async def first_in_flight() -> bool:
            return len(hook.hits) == 1

        await eventually(first_in_flight)
        running.cancel()
        await publish()
        [second] = await dispatcher.claim(10)  # the drain waits for the attempt in flight meanwhile
        dispatcher._accept([second])
        assert not running.done()
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running

        assert dispatcher._tasks == set() and dispatcher._sending == Counter()
        await asyncio.sleep(0.3)
        assert len(hook.hits) == 1  # the second never started (its lease expires: WHK-4)
