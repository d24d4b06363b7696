"""Deliveries leased as they are stored (services/ingest.py, ``_store_leasing``): the worker that ingests
an event takes its deliveries at once, with no claim, only where a claim of its own would have taken
them: never an endpoint another worker holds a live lease on or has locked (WHK-8), never ahead of an
older due delivery of the endpoint, never past the room its dispatcher granted."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest
from billing_contracts.envelope import utcnow
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from webhook_dispatcher.keys import deps_key, dispatcher_key
from webhook_dispatcher.services import ingest as ingest_module
from webhook_dispatcher.services.attempts import Claimed, Lease, Reservation
from webhook_dispatcher.services.deps import WebhookDeps
from webhook_dispatcher.services.ingest import ingest_events

LEASE = timedelta(seconds=60)


class FakeIntake:
    """A dispatcher as the consumer sees it, granting ``room`` per endpoint (all it is asked for when
    not given), and keeping what it was handed."""

    def __init__(self, room: Mapping[str, int] | None = None) -> None:
        self.worker_id = secrets.token_hex(6)
        self.room = dict(room or {})
        self.taken: list[Claimed] = []
        self.given_back: Counter[str] = Counter()
        self.granted: Counter[str] = Counter()

    def new_lease(self) -> tuple[Lease, datetime, datetime]:
        now = utcnow()
        return Lease(self.worker_id + secrets.token_hex(10), time.monotonic() + 60), now, now + LEASE

    def reserve(self, wanted: Mapping[str, int]) -> Reservation:
        granted = {e: min(n, self.room.get(e, n)) for e, n in wanted.items() if min(n, self.room.get(e, n)) > 0}
        self.granted.update(granted)
        return Reservation(granted)

    def take(self, reservation: Reservation, claimed: list[Claimed]) -> None:
        assert all(reservation.granted.get(c.endpoint_id, 0) > 0 for c in claimed)
        self.taken.extend(claimed)

    def settle(self, reservation: Reservation, used: Mapping[str, int]) -> None:
        for endpoint_id, count in reservation.granted.items():
            if count > used.get(endpoint_id, 0):
                self.given_back[endpoint_id] += count - used.get(endpoint_id, 0)


async def _api(start_app, auth, receiver) -> tuple[Any, WebhookDeps, dict[str, Any], Any]:  # type: ignore[no-untyped-def]
    """An API process (no dispatcher of its own, so nothing here sends), its deps and one endpoint."""
    api = await start_app(roles=("api",))
    hook = await receiver()
    response = await api.post("/v1/webhook-endpoints", json={"url": hook.url}, headers=auth())
    assert response.status == 201
    endpoint = dict(await response.json())
    hook.secrets.append(endpoint["secret"])
    return api, api.app[deps_key], endpoint, hook


async def _leases(engine: AsyncEngine) -> dict[str, str | None]:
    """Each delivery's claim token, by the event it carries."""
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT event_id, claim_token FROM webhook_deliveries"))).all()
    return {row[0]: row[1] for row in rows}


def _with(deps: WebhookDeps, intake: FakeIntake | None, woken: list[int]) -> WebhookDeps:
    return dataclasses.replace(deps, intake=intake, wake=lambda: woken.append(1))


class TestLeasedAtIngest:
    async def test_a_delivery_is_leased_to_the_ingesting_worker_and_handed_over_ready_to_send(
        self, start_app, auth, receiver, make_event, clean_db
    ) -> None:  # type: ignore[no-untyped-def]
        _, deps, endpoint, _hook = await _api(start_app, auth, receiver)
        intake, woken = FakeIntake(), []
        event = make_event()
        assert await ingest_events(_with(deps, intake, woken), [event]) == [1]

        [claimed] = intake.taken
        assert claimed.event_id == event.event_id and claimed.endpoint_id == endpoint["id"]
        assert claimed.url == endpoint["url"] and claimed.secrets == [endpoint["secret"]]
        assert claimed.token.startswith(intake.worker_id) and claimed.manual is False
        assert (await _leases(clean_db))[event.event_id] == claimed.token
        assert b'"type":"payment.succeeded"' in claimed.body.replace(b" ", b"")
        # Nothing left for a claim to find: nobody is woken, and no room is given back.
        assert woken == [] and intake.given_back == Counter()

    async def test_without_a_dispatcher_or_room_the_delivery_is_stored_for_a_claim(
        self, start_app, auth, receiver, make_event, clean_db
    ) -> None:  # type: ignore[no-untyped-def]
        _, deps, endpoint, _hook = await _api(start_app, auth, receiver)
        woken: list[int] = []
        plain, roomless = make_event(), make_event()
        assert await ingest_events(_with(deps, None, woken), [plain]) == [1]
        full = FakeIntake({endpoint["id"]: 0})
        assert await ingest_events(_with(deps, full, woken), [roomless]) == [1]
        leases = await _leases(clean_db)
        assert leases[plain.event_id] is None and leases[roomless.event_id] is None
        assert full.taken == [] and woken == [1, 1]

    async def test_another_workers_live_lease_keeps_the_endpoint_theirs(
        self, start_app, auth, receiver, make_event, clean_db
    ) -> None:  # type: ignore[no-untyped-def]
        _, deps, endpoint, _hook = await _api(start_app, auth, receiver)
        theirs, mine, woken = FakeIntake(), FakeIntake(), []
        first, second = make_event(), make_event()
        await ingest_events(_with(deps, theirs, woken), [first])
        await ingest_events(_with(deps, mine, woken), [second])
        leases = await _leases(clean_db)
        assert leases[first.event_id] == theirs.taken[0].token
        assert leases[second.event_id] is None
        assert mine.taken == [] and mine.given_back == Counter({endpoint["id"]: 1}) and woken == [1]

    async def test_its_own_live_lease_does_not_stop_a_worker(
        self, start_app, auth, receiver, make_event, clean_db
    ) -> None:  # type: ignore[no-untyped-def]
        _, deps, _endpoint, _hook = await _api(start_app, auth, receiver)
        intake, woken = FakeIntake(), []
        first, second = make_event(), make_event()
        await ingest_events(_with(deps, intake, woken), [first])
        await ingest_events(_with(deps, intake, woken), [second])
        assert [c.event_id for c in intake.taken] == [first.event_id, second.event_id]
        leases = await _leases(clean_db)
        assert leases[first.event_id] and leases[second.event_id] and woken == []

    async def test_an_older_due_delivery_nobody_holds_goes_first(
        self, start_app, auth, receiver, make_event, clean_db
    ) -> None:  # type: ignore[no-untyped-def]
        _, deps, endpoint, _hook = await _api(start_app, auth, receiver)
        woken: list[int] = []
        older, newer = make_event(), make_event()
        await ingest_events(_with(deps, None, woken), [older])
        intake = FakeIntake()
        await ingest_events(_with(deps, intake, woken), [newer])
        leases = await _leases(clean_db)
        assert leases[older.event_id] is None and leases[newer.event_id] is None
        assert intake.taken == [] and intake.given_back == Counter({endpoint["id"]: 1})

    async def test_an_endpoint_a_claim_has_locked_is_left_to_claims(
        self, start_app, auth, receiver, make_event, clean_db, database_url
    ) -> None:  # type: ignore[no-untyped-def]
        _, deps, endpoint, _hook = await _api(start_app, auth, receiver)
        claim = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://", 1))
        try:
            # What a claim in progress holds: the endpoint row, FOR NO KEY UPDATE.
            transaction = claim.transaction()
            await transaction.start()
            await claim.execute("SELECT id FROM webhook_endpoints WHERE id = $1 FOR NO KEY UPDATE", endpoint["id"])
            intake, woken = FakeIntake(), []
            event = make_event()
            # SKIP LOCKED: the ingest neither waits for the claim nor leases behind its back.
            assert await asyncio.wait_for(ingest_events(_with(deps, intake, woken), [event]), 5) == [1]
            await transaction.rollback()
        finally:
            await claim.close()
        assert (await _leases(clean_db))[event.event_id] is None
        assert intake.taken == [] and woken == [1]

    async def test_no_more_is_leased_than_the_room_granted(
        self, start_app, auth, receiver, make_event, clean_db
    ) -> None:  # type: ignore[no-untyped-def]
        _, deps, endpoint, _hook = await _api(start_app, auth, receiver)
        intake, woken = FakeIntake({endpoint["id"]: 2}), []
        events = [make_event() for _ in range(3)]
        assert await ingest_events(_with(deps, intake, woken), events) == [1, 1, 1]
        # The first two in the batch's order; the third waits for a claim, which is woken.
        assert [c.event_id for c in intake.taken] == [e.event_id for e in events[:2]]
        leases = await _leases(clean_db)
        assert leases[events[2].event_id] is None and woken == [1]
        assert intake.given_back == Counter()

    async def test_a_redelivered_event_leases_nothing_and_gives_the_room_back(
        self, start_app, auth, receiver, make_event, clean_db
    ) -> None:  # type: ignore[no-untyped-def]
        _, deps, endpoint, _hook = await _api(start_app, auth, receiver)
        event = make_event()
        first, again, woken = FakeIntake(), FakeIntake(), []
        await ingest_events(_with(deps, first, woken), [event])
        assert await ingest_events(_with(deps, again, woken), [event]) == [0]
        assert again.taken == [] and again.given_back == Counter({endpoint["id"]: 1}) and woken == []

    async def test_a_failed_ingest_gives_all_the_room_back(
        self, start_app, auth, receiver, make_event, clean_db
    ) -> None:  # type: ignore[no-untyped-def]
        _, deps, endpoint, _hook = await _api(start_app, auth, receiver)
        intake, woken = FakeIntake(), []
        # An event id longer than the column holds: the statement fails, and with it the whole batch.
        event = make_event(event_id="evt_" + "x" * 100)
        with pytest.raises(DBAPIError):
            await ingest_events(_with(deps, intake, woken), [event])
        assert intake.taken == [] and intake.given_back == Counter({endpoint["id"]: 1})
        assert await _leases(clean_db) == {}


class TestCancelled:
    async def test_an_ingest_cancelled_as_it_commits_still_hands_over_what_it_leased(
        self, start_app, auth, receiver, make_event, clean_db, monkeypatch
    ) -> None:  # type: ignore[no-untyped-def]
        _, deps, _endpoint, _hook = await _api(start_app, auth, receiver)
        intake, woken = FakeIntake(), []
        transaction = ingest_module.transaction_alone
        committed, gate = asyncio.Event(), asyncio.Event()

        async def slow_reply(engine, work):  # type: ignore[no-untyped-def]
            rows = await transaction(engine, work)
            committed.set()
            await gate.wait()  # the COMMIT's reply still on its way when the caller is cancelled
            return rows

        monkeypatch.setattr(ingest_module, "transaction_alone", slow_reply)
        event = make_event()
        ingesting = asyncio.create_task(ingest_events(_with(deps, intake, woken), [event]))
        await asyncio.wait_for(committed.wait(), 5)
        ingesting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await ingesting
        gate.set()
        await asyncio.sleep(0.1)
        # Before: the cancellation gave the room back and the committed lease was never handed over.
        assert (await _leases(clean_db))[event.event_id].startswith(intake.worker_id)
        assert [c.event_id for c in intake.taken] == [event.event_id]
        assert intake.given_back == Counter()


class TestWithTheDispatcher:
    async def test_a_worker_sends_what_it_leased_at_ingest_without_claiming(
        self, start_app, auth, receiver, publish, eventually
    ) -> None:  # type: ignore[no-untyped-def]
        hook = await receiver()
        # Polls once an hour: only a wake or the hand-over can make it send.
        app = await start_app(dispatch_poll_interval=3600)
        response = await app.post("/v1/webhook-endpoints", json={"url": hook.url}, headers=auth())
        hook.secrets.append((await response.json())["secret"])
        dispatcher = app.app[dispatcher_key]
        claims = 0
        claim = dispatcher.claim

        async def counted(limit: int, **kwargs: Any) -> list[Claimed]:
            nonlocal claims
            claims += 1
            return await claim(limit, **kwargs)

        dispatcher.claim = counted  # type: ignore[method-assign]
        await asyncio.sleep(0.2)  # the loop's first claim is over: it sleeps
        event = await publish()

        async def delivered() -> bool:
            rows = (await (await app.get("/v1/webhook-deliveries", headers=auth())).json())["data"]
            return len(hook.hits) == 1 and rows[0]["status"] == "succeeded"

        await eventually(delivered, 5)
        assert hook.hits[0].headers["webhook-id"] == event.event_id
        assert claims == 0

        async def let_go() -> bool:
            return not dispatcher._held

        await eventually(let_go, 5)
