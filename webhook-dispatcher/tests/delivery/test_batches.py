"""Batched claiming, sending and recording: one claim transaction leases many deliveries, one record
transaction writes many outcomes, and every invariant of the one-at-a-time path still holds."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from billing_contracts.events import PaymentCreatedV1
from sqlalchemy import text, update
from webhook_dispatcher.db.models import Endpoint
from webhook_dispatcher.keys import deps_key, dispatcher_key
from webhook_dispatcher.services.dispatcher import Dispatcher
from webhook_dispatcher.services.ingest import ingest_events


async def _endpoint(api, auth, hook: Any) -> dict:  # type: ignore[no-untyped-def]
    """An endpoint at ``hook``, whose secret the receiver then verifies every request with."""
    response = await api.post("/v1/webhook-endpoints", json={"url": hook.url}, headers=auth())
    assert response.status == 201
    created = dict(await response.json())
    hook.secrets.append(created["secret"])
    return created


async def _deliveries(api, auth, **query: str) -> list[dict]:  # type: ignore[no-untyped-def]
    # Not the deliveries_of fixture: it starts an app with a delivering worker of its own.
    response = await api.get("/v1/webhook-deliveries", params={"limit": "100", **query}, headers=auth())
    return list((await response.json())["data"])


async def _idle_dispatcher(start_app, **overrides):  # type: ignore[no-untyped-def]
    """A worker that consumes events but never claims on its own: its dispatcher is driven by hand."""
    app = await start_app(roles=("worker",), worker_concurrency=0, **overrides)
    return app.app[dispatcher_key]


async def _hand_driven_claims(start_app, auth, receiver, publish, count):  # type: ignore[no-untyped-def]
    """``count`` deliveries to one endpoint, claimed by a dispatcher that may send (the idle one's zero
    concurrency never starts anything) and has no loop of its own; with the endpoint's receiver."""
    api = await start_app(roles=("api",))
    hook = await receiver()
    await _endpoint(api, auth, hook)
    idle = await _idle_dispatcher(start_app)
    config = dataclasses.replace(idle.config, concurrency=4)
    dispatcher = Dispatcher(idle.uow, idle.box, config, idle.metrics, idle.client)
    for _ in range(count):
        await publish()
    claimed = await dispatcher.claim(10)
    assert len(claimed) == count
    return api, hook, dispatcher, claimed


class TestRecordBatch:
    async def test_a_batch_with_mixed_outcomes_records_each_attempt(self, start_app, auth, receiver, publish) -> None:
        api = await start_app(roles=("api",))
        ok, broken, gone, moved = (
            await receiver(),
            await receiver(default=500),
            await receiver(default=410),
            await receiver(default=(302, {"Location": "/x"})),
        )
        endpoints = {name: await _endpoint(api, auth, r) for name, r in [("ok", ok), ("broken", broken)]}
        endpoints["gone"] = await _endpoint(api, auth, gone)
        endpoints["moved"] = await _endpoint(api, auth, moved)
        dispatcher = await _idle_dispatcher(start_app)
        await publish()
        claimed = await dispatcher.claim(100)
        assert len(claimed) == 4
        results = await asyncio.gather(*(dispatcher.send(item) for item in claimed))

        outcomes = await dispatcher.record_batch(list(zip(claimed, results, strict=True)))

        by_endpoint = {item.endpoint_id: outcome for item, outcome in zip(claimed, outcomes, strict=True)}
        assert by_endpoint == {
            endpoints["ok"]["id"]: "succeeded",
            endpoints["broken"]["id"]: "retrying",
            endpoints["gone"]["id"]: "failed",
            endpoints["moved"]["id"]: "retrying",
        }
        for name, status, code in [("ok", "succeeded", 200), ("broken", "pending", 500), ("gone", "failed", 410)]:
            [row] = await _deliveries(api, auth, endpoint_id=endpoints[name]["id"], event_type="payment.succeeded")
            detail = await (await api.get(f"/v1/webhook-deliveries/{row['id']}", headers=auth())).json()
            assert detail["status"] == status
            assert [(a["number"], a["status_code"]) for a in detail["attempts"]] == [(1, code)]
            assert detail["attempt_count"] == 1
        [row] = await _deliveries(api, auth, endpoint_id=endpoints["moved"]["id"], event_type="payment.succeeded")
        detail = await (await api.get(f"/v1/webhook-deliveries/{row['id']}", headers=auth())).json()
        assert "redirect not followed" in detail["attempts"][0]["error"]
        state = await (await api.get(f"/v1/webhook-endpoints/{endpoints['gone']['id']}", headers=auth())).json()
        assert (state["enabled"], state["disabled_reason"]) == (False, "gone")
        # Disabling in the same transaction told the tenant's other endpoints.
        assert len(await _deliveries(api, auth, event_type="endpoint.disabled")) == 3
        # Recorded once: the leases were released with the record, so nothing is recorded twice.
        assert await dispatcher.record_batch(list(zip(claimed, results, strict=True))) == [None] * 4

    async def test_successes_on_a_healthy_endpoint_are_recorded_in_one_statement_and_clear_a_new_failing_mark(
        self, start_app, auth, receiver, publish, clean_db
    ) -> None:
        api = await start_app(roles=("api",))
        endpoint = await _endpoint(api, auth, await receiver())
        dispatcher = await _idle_dispatcher(start_app)
        await publish()
        first = await dispatcher.claim(10)
        await dispatcher.record_batch([(item, await dispatcher.send(item)) for item in first])  # now healthy
        await publish()
        await publish()
        claimed = await dispatcher.claim(10)
        assert len(claimed) == 2
        assert all(item.endpoint_healthy for item in claimed)
        results = [await dispatcher.send(item) for item in claimed]
        # An earlier failure, recorded meanwhile elsewhere, marked the endpoint failing.
        async with clean_db.begin() as conn:
            await conn.execute(text("UPDATE webhook_endpoints SET failing_since = now()"))

        assert await dispatcher.record_batch(list(zip(claimed, results, strict=True))) == ["succeeded"] * 2

        for item in claimed:
            detail = await (await api.get(f"/v1/webhook-deliveries/{item.delivery_id}", headers=auth())).json()
            assert detail["status"] == "succeeded"
            assert [(a["number"], a["status_code"], a["outcome"]) for a in detail["attempts"]] == [
                (1, 200, "succeeded")
            ]
        async with clean_db.connect() as conn:
            marks = (await conn.execute(text("SELECT failing_since FROM webhook_endpoints"))).scalars().all()
            leases = (
                await conn.execute(text("SELECT count(*) FROM webhook_deliveries WHERE claim_token IS NOT NULL"))
            ).scalar()
        assert marks == [None]
        assert leases == 0
        assert endpoint["id"] == claimed[0].endpoint_id
        # The leases went with the record: recording again writes nothing.
        assert await dispatcher.record_batch(list(zip(claimed, results, strict=True))) == [None, None]

    async def test_a_handed_back_lease_is_claimed_again_without_an_attempt(
        self, start_app, auth, receiver, publish
    ) -> None:
        api = await start_app(roles=("api",))
        hook = await receiver()
        await _endpoint(api, auth, hook)
        dispatcher = await _idle_dispatcher(start_app)
        await publish()
        [first] = await dispatcher.claim(10)
        assert await dispatcher.claim(10) == []
        assert await dispatcher.record_batch([(first, None)]) == [None]
        [again] = await dispatcher.claim(10)
        assert again.delivery_id == first.delivery_id
        assert again.token != first.token
        [row] = await _deliveries(api, auth)
        assert row["attempt_count"] == 0
        assert hook.hits == []

    async def test_deliveries_queued_until_their_lease_is_nearly_over_are_handed_back_unsent_in_order(
        self, start_app, auth, receiver, publish
    ) -> None:
        api, hook, dispatcher, claimed = await _hand_driven_claims(start_app, auth, receiver, publish, 3)
        # As if they had waited behind slow requests: too little lease left to start one safely (WHK-3).
        late = [dataclasses.replace(item, lease_deadline=time.monotonic() + 0.01) for item in claimed]

        dispatcher._accept(late)
        await asyncio.gather(*list(dispatcher._tasks))

        assert hook.hits == []
        assert all(row["attempt_count"] == 0 for row in await _deliveries(api, auth))
        assert dispatcher._held == Counter()
        again = await dispatcher.claim(10)
        assert [item.delivery_id for item in again] == [item.delivery_id for item in claimed]
        assert {item.token for item in again}.isdisjoint({item.token for item in claimed})

    async def test_attempts_cancelled_before_their_first_step_give_back_their_slots_and_holds(
        self, start_app, auth, receiver, publish
    ) -> None:
        # As when ``run`` ends unexpectedly right after a pump: its drain cancels tasks never started.
        _, hook, dispatcher, claimed = await _hand_driven_claims(start_app, auth, receiver, publish, 2)

        dispatcher._accept(claimed)  # starts both attempts: tasks created, not yet run
        assert sum(dispatcher._sending.values()) == 2
        tasks = list(dispatcher._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

        assert hook.hits == []
        assert dispatcher._sending == Counter()
        assert dispatcher._held == Counter()


class TestClaimBatch:
    async def test_two_dispatchers_claiming_at_once_never_share_a_delivery_or_an_endpoint(
        self, start_app, auth, receiver, publish
    ) -> None:
        api = await start_app(roles=("api",))
        for _ in range(4):
            await _endpoint(api, auth, await receiver())
        first, second = await _idle_dispatcher(start_app), await _idle_dispatcher(start_app)
        for _ in range(10):
            await publish(event_type=PaymentCreatedV1)

        a, b = await asyncio.gather(first.claim(25), second.claim(25))

        assert not {c.delivery_id for c in a} & {c.delivery_id for c in b}
        # Each endpoint's traffic belongs to one worker at a time (WHK-8).
        assert not {c.endpoint_id for c in a} & {c.endpoint_id for c in b}
        # The rest goes to each endpoint's owner (the other worker gets none of it).
        rest_a, rest_b = await first.claim(100), await second.claim(100)
        assert {c.endpoint_id for c in rest_a} <= {c.endpoint_id for c in a}
        assert {c.endpoint_id for c in rest_b} <= {c.endpoint_id for c in b}
        assert len({c.delivery_id for c in [*a, *b, *rest_a, *rest_b]}) == 40

    async def test_an_endpoint_held_by_another_worker_does_not_crowd_out_the_others(
        self, start_app, auth, receiver, publish
    ) -> None:
        api = await start_app(roles=("api",))
        busy = await _endpoint(api, auth, await receiver())
        first, second = await _idle_dispatcher(start_app), await _idle_dispatcher(start_app)
        for _ in range(5):
            await publish(event_type=PaymentCreatedV1)
        quiet = await _endpoint(api, auth, await receiver())
        await api.post(f"/v1/webhook-endpoints/{quiet['id']}/test", headers=auth())
        [held] = await first.claim(1)
        assert held.endpoint_id == busy["id"]

        # The busy endpoint's deliveries are older, but the first worker holds it: the second gets
        # the other endpoint's delivery instead of idling.
        [taken] = await second.claim(1)

        assert taken.endpoint_id == quiet["id"]
        assert await second.claim(10) == []

    @pytest.mark.parametrize(
        ("change", "reason"),
        [
            ({"enabled": False, "disabled_reason": "manual"}, "endpoint disabled"),
            # Disabled with no reason recorded: given up as a tenant's own disabling is.
            ({"enabled": False}, "endpoint disabled"),
            ({"enabled": False, "disabled_reason": "gone"}, "endpoint disabled (gone)"),
            ({"deleted_at": datetime.now(UTC)}, "endpoint deleted"),
        ],
    )
    async def test_due_deliveries_left_behind_by_a_disabling_are_given_up_not_left_to_clog_the_claim(
        self, start_app, auth, receiver, publish, clean_db, change, reason
    ) -> None:
        api = await start_app(roles=("api",))
        gone = await _endpoint(api, auth, await receiver())
        dispatcher = await _idle_dispatcher(start_app)
        for _ in range(10):
            await publish(event_type=PaymentCreatedV1)
        # Disabled (or deleted) without its pending deliveries being given up: what an ingest that read
        # the endpoint just before a concurrent disabling committed leaves behind.
        async with clean_db.begin() as conn:
            await conn.execute(update(Endpoint).where(Endpoint.id == gone["id"]).values(**change))
        live = await _endpoint(api, auth, await receiver())
        await api.post(f"/v1/webhook-endpoints/{live['id']}/test", headers=auth())

        # The orphans are older than the live endpoint's delivery and fill the claim's whole window
        # (4 x limit): before, every claim found only them, skipped them, and leased nothing, forever.
        claimed = await dispatcher.claim(2)

        assert [item.endpoint_id for item in claimed] == [live["id"]]
        async with clean_db.connect() as conn:
            rows = (
                await conn.execute(
                    text("SELECT status, last_error, claim_token FROM webhook_deliveries WHERE endpoint_id = :id"),
                    {"id": gone["id"]},
                )
            ).all()
        assert rows == [("failed", reason, None)] * 10
        label = "deleted" if "deleted" in reason else "disabled"
        registry = dispatcher.metrics.base.registry
        assert registry.get_sample_value("webhook_deliveries_given_up_total", {"reason": label}) == 10


class TestSendBatch:
    async def test_the_per_endpoint_cap_holds_within_one_claimed_batch(
        self, start_app, auth, receiver, publish, eventually
    ) -> None:
        api = await start_app(roles=("api",))
        slow = await receiver(delay=0.05)
        await _endpoint(api, auth, slow)
        stage = await start_app(roles=("worker",), worker_concurrency=0)
        del stage
        for _ in range(12):
            await publish(event_type=PaymentCreatedV1)
        await start_app(roles=("worker",), max_concurrency_per_endpoint=3)

        async def done() -> bool:
            rows = await _deliveries(api, auth)
            return Counter(r["status"] for r in rows)["succeeded"] == 12

        await eventually(done, 10)
        assert slow.max_concurrent == 3
        assert len(slow.hits) == 12


class TestIngestBatch:
    async def test_one_transaction_stores_a_batch_once_even_with_duplicates(
        self, start_app, auth, receiver, make_event, count
    ) -> None:
        api = await start_app(roles=("api",), worker_concurrency=0)
        await _endpoint(api, auth, await receiver())
        deps = api.app[deps_key]
        seen, fresh = make_event(event_type=PaymentCreatedV1), make_event(event_type=PaymentCreatedV1)
        other_tenant = make_event("ten_b", event_type=PaymentCreatedV1)
        assert await ingest_events(deps, [seen]) == [1]

        created = await ingest_events(deps, [seen, fresh, fresh, other_tenant])

        assert created == [0, 1, 0, 0]
        # The other tenant's event goes to no endpoint: it leaves no row (test_endpoint_copies.py).
        assert await count("webhook_events") == 2
        assert await count("webhook_deliveries") == 2
