"""Several dispatcher workers on one database: per-endpoint cap, exactly one send per attempt, and a
dead worker's claim taken over after its lease expires (same webhook-id)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from billing_contracts.envelope import utcnow
from billing_contracts.events import PaymentCreatedV1
from webhook_dispatcher.db.models import outbox
from webhook_dispatcher.keys import dispatcher_key, plumbing_key
from webhook_dispatcher.services.attempts import AttemptResult
from webhook_dispatcher.services.dispatcher import Dispatcher
from webhook_dispatcher.services.uow import WebhooksUnitOfWork


async def _create(client, auth, hook: Any) -> dict:  # type: ignore[no-untyped-def]
    """An endpoint at ``hook``, whose secret the receiver then verifies every request with."""
    response = await client.post("/v1/webhook-endpoints", json={"url": hook.url}, headers=auth())
    assert response.status == 201
    created = dict(await response.json())
    hook.secrets.append(created["secret"])
    return created


async def _statuses(client, auth) -> Counter[str]:  # type: ignore[no-untyped-def]
    rows = (await (await client.get("/v1/webhook-deliveries?limit=100", headers=auth())).json())["data"]
    return Counter(r["status"] for r in rows)


class TestFairness:
    @pytest.mark.slow
    async def test_per_endpoint_concurrency_cap_holds_across_two_workers(
        self, start_app, auth, receiver, publish, eventually
    ) -> None:
        api = await start_app(roles=("api",))
        for _ in range(2):
            await start_app(roles=("worker",), max_concurrency_per_endpoint=2)
        slow = await receiver(delay=0.25)
        fast = await receiver()
        await _create(api, auth, slow)
        for _ in range(8):
            await publish()
        # Another endpoint is not starved by the slow one.
        fast_endpoint = await _create(api, auth, fast)
        await api.post(f"/v1/webhook-endpoints/{fast_endpoint['id']}/test", headers=auth())

        async def done() -> bool:
            return (await _statuses(api, auth))["succeeded"] == 9

        await eventually(done, 15)
        assert slow.max_concurrent == 2
        assert len(slow.hits) == 8
        assert fast.hits[0].at < slow.hits[-1].at


class TestManyWorkers:
    @pytest.mark.slow
    async def test_two_workers_send_each_delivery_exactly_once(
        self, start_app, auth, receiver, bus, make_event, as_message, eventually
    ) -> None:
        api = await start_app(roles=("api",))
        hooks = [await receiver(delay=0.01) for _ in range(3)]
        for hook in hooks:
            await _create(api, auth, hook)
        events = [make_event(event_type=PaymentCreatedV1) for _ in range(30)]
        # Stored first (no worker yet), so both workers start on the same backlog.
        consumer = await start_app(roles=("worker",), worker_concurrency=0)
        del consumer
        for event in events:
            await bus.publish(as_message(event))
        for _ in range(2):
            await start_app(roles=("worker",), max_concurrency_per_endpoint=8, worker_concurrency=8)

        async def done() -> bool:
            return sum(len(h.hits) for h in hooks) >= 90 and (await _statuses(api, auth))["succeeded"] == 90

        await eventually(done, 20)
        await asyncio.sleep(0.3)
        for hook in hooks:
            assert sorted(hook.ids()) == sorted(e.event_id for e in events)
        assert sum(len(h.hits) for h in hooks) == 90


class TestCrashSafety:
    @pytest.mark.slow
    async def test_a_dead_workers_claim_is_retried_by_another_with_the_same_webhook_id(
        self, start_app, auth, receiver, eventually
    ) -> None:
        api = await start_app(roles=("api",), request_timeout=0.5, lease_seconds=1)
        hook = await receiver()
        endpoint = await _create(api, auth, hook)
        delivery = await (await api.post(f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=auth())).json()

        # Worker A claims the delivery and "dies" before sending: nothing else happens on its side.
        plumbing = api.app[plumbing_key]
        # A worker process that never claims on its own (no free slots), to borrow its dispatcher's parts.
        worker_app = await start_app(roles=("worker",), request_timeout=0.5, lease_seconds=1, worker_concurrency=0)
        template = worker_app.app[dispatcher_key]
        dead = Dispatcher(
            lambda: WebhooksUnitOfWork(plumbing.sessionmaker, outbox),  # type: ignore[arg-type]
            template.box,
            template.config,
            template.metrics,
            template.client,
        )
        [claimed] = await dead.claim(10)
        assert claimed.delivery_id == delivery["id"]

        # Worker B polls; it cannot take the delivery until A's lease has expired.
        await start_app(roles=("worker",), request_timeout=0.5, lease_seconds=1)

        async def delivered() -> bool:
            return len(hook.hits) == 1

        await eventually(delivered, 5)
        # Checked on the request's arrival, not after a sleep: B's start-up alone may use up the lease
        # on a loaded machine. A's deadline was taken before its claim, so it is never late.
        assert hook.hits[0].at >= claimed.lease_deadline
        assert hook.hits[0].headers["webhook-id"] == claimed.event_id == delivery["event_id"]
        # A waking up late cannot record anything: it no longer holds the lease.
        assert await dead.record(claimed, AttemptResult(started_at=utcnow(), latency=0.1, status=200)) is None

        # The receiver counts the request as it arrives; worker B records it once the answer is back.
        async def recorded() -> bool:
            detail = await (await api.get(f"/v1/webhook-deliveries/{delivery['id']}", headers=auth())).json()
            return detail["status"] == "succeeded"

        await eventually(recorded, 5)
        detail = await (await api.get(f"/v1/webhook-deliveries/{delivery['id']}", headers=auth())).json()
        assert len(detail["attempts"]) == 1
        assert len(hook.hits) == 1


class TestCrossProcessWake:
    async def test_an_api_process_wakes_a_separate_worker_at_once(self, start_app, auth, receiver, eventually) -> None:
        api = await start_app(roles=("api",))
        # This worker polls once an hour: only the NOTIFY from the API process can make it deliver now.
        await start_app(roles=("worker",), dispatch_poll_interval=3600)
        await asyncio.sleep(0.2)
        hook = await receiver()
        endpoint = await _create(api, auth, hook)
        await api.post(f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=auth())

        async def delivered() -> bool:
            return len(hook.hits) == 1

        await eventually(delivered, 5)


class TestGracefulStop:
    @pytest.mark.slow
    async def test_a_stopping_worker_finishes_and_records_the_attempt_in_flight(
        self, start_app, auth, receiver, publish, eventually
    ) -> None:
        api = await start_app(roles=("api",))
        # Longer than the 5 s a cancelled loop waits: only a graceful stop lets this attempt finish.
        slow = await receiver(delay=6.0)
        await _create(api, auth, slow)
        worker = await start_app(roles=("worker",), request_timeout=8, lease_seconds=60)
        await publish()

        async def in_flight() -> bool:
            return len(slow.hits) == 1

        await eventually(in_flight, 15)
        await worker.close()  # the app's cleanup: the plumbing stops the dispatcher gracefully
        # Recorded as delivered by the worker that sent it: no lease left to expire, nothing sent again.
        assert (await _statuses(api, auth)) == Counter({"succeeded": 1})
        assert len(slow.hits) == 1
