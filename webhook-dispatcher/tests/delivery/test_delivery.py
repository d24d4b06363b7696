"""Delivery end to end: bus event → stored deliveries → signed HTTP attempts to loopback receivers."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from datetime import UTC, datetime

import pytest
from billing_contracts.events import EndpointDisabledV1, PaymentCreatedV1, parse_event
from billing_contracts.signing import sign
from billing_runtime.bus import Message
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from webhook_dispatcher.keys import dispatcher_key


class TestSigning:
    async def test_event_is_delivered_signed_with_the_public_body(
        self, client, receiver, create_endpoint, publish, deliveries_of, wait_status
    ) -> None:
        hook = await receiver()
        await create_endpoint(hook)
        event = await publish()
        [delivery] = await deliveries_of()
        detail = await wait_status(delivery["id"], "succeeded")
        [hit] = hook.hits
        assert hit.verified
        assert hit.headers["webhook-id"] == event.event_id
        assert hit.headers["content-type"] == "application/json"
        body = json.loads(hit.body)
        assert body == {
            "id": event.event_id,
            "type": "payment.succeeded",
            "created_at": event.occurred_at.isoformat().replace("+00:00", "Z"),
            "livemode": False,
            "data": {"payment": event.model_dump(mode="json")["data"]["payment"]},
        }
        assert detail["event"] == body
        [attempt] = detail["attempts"]
        assert attempt["status_code"] == 200
        assert attempt["outcome"] == "succeeded"
        assert attempt["response_body"] == "answer 200"
        assert attempt["latency_ms"] >= 0
        assert attempt["error"] is None

    async def test_reference_verifier_rejects_wrong_secret_stale_timestamp_and_tampered_body(
        self, receiver, create_endpoint, publish, deliveries_of, wait_status
    ) -> None:
        hook = await receiver()
        await create_endpoint(hook)
        await publish()
        [delivery] = await deliveries_of()
        await wait_status(delivery["id"], "succeeded")
        [hit] = hook.hits
        secret = hook.secrets[0]
        other = "whsec_" + base64.b64encode(b"x" * 32).decode()
        with pytest.raises(WebhookVerificationError):
            Webhook(other).verify(hit.body, hit.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(hit.body + b" ", hit.headers)
        stale = int(time.time()) - 3600
        stale_headers = {
            **hit.headers,
            "webhook-timestamp": str(stale),
            "webhook-signature": sign(secret, hit.headers["webhook-id"], stale, hit.body),
        }
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(hit.body, stale_headers)
        Webhook(secret).verify(hit.body, hit.headers)

    async def test_rotation_sends_both_signatures_each_verifiable(
        self, client, auth, receiver, create_endpoint, publish, deliveries_of, wait_status
    ) -> None:
        hook = await receiver()
        endpoint = await create_endpoint(hook)
        old = endpoint["secret"]
        rotated = await (
            await client.post(f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret", headers=auth())
        ).json()
        new = rotated["secret"]
        await publish()
        [delivery] = await deliveries_of()
        await wait_status(delivery["id"], "succeeded")
        [hit] = hook.hits
        signatures = hit.headers["webhook-signature"].split(" ")
        assert len(signatures) == 2
        Webhook(old).verify(hit.body, hit.headers)
        Webhook(new).verify(hit.body, hit.headers)

    async def test_after_the_grace_period_only_the_new_secret_signs(self, start_app, auth, receiver, publish) -> None:
        client = await start_app(secret_rotation_grace_hours=0)
        hook = await receiver()
        created = await (await client.post("/v1/webhook-endpoints", json={"url": hook.url}, headers=auth())).json()
        rotated = await (
            await client.post(f"/v1/webhook-endpoints/{created['id']}/rotate-secret", headers=auth())
        ).json()
        hook.secrets.append(rotated["secret"])
        await client.post(f"/v1/webhook-endpoints/{created['id']}/test", headers=auth())
        for _ in range(200):
            if hook.hits:
                break
            await _sleep(0.02)
        [hit] = hook.hits
        assert len(hit.headers["webhook-signature"].split(" ")) == 1
        Webhook(rotated["secret"]).verify(hit.body, hit.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(created["secret"]).verify(hit.body, hit.headers)


class TestAttemptLog:
    async def test_only_the_first_2_kib_of_a_response_is_kept(
        self, receiver, create_endpoint, publish, deliveries_of, wait_status
    ) -> None:
        hook = await receiver(default=500, body="é" + "x" * 10_000)
        await create_endpoint(hook)
        await publish()
        [delivery] = await deliveries_of()
        detail = await wait_status(delivery["id"], "failed")
        for attempt in detail["attempts"]:
            assert attempt["status_code"] == 500
            assert attempt["response_body"] == "é" + "x" * 2046
            assert attempt["outcome"] == "failed"
            assert attempt["started_at"].endswith("Z")


class TestFanOut:
    async def test_filters_disabled_endpoints_tenants_and_duplicates(
        self,
        client,
        auth,
        receiver,
        create_endpoint,
        publish,
        bus,
        as_message,
        make_event,
        deliveries_of,
        wait_status,
        count,
    ) -> None:
        every = await receiver()
        created_only = await receiver()
        disabled = await receiver()
        other_tenant = await receiver()
        await create_endpoint(every)
        await create_endpoint(created_only, events=["payment.created"])
        await create_endpoint(disabled, enabled=False)
        await create_endpoint(other_tenant, tenant="ten_b")
        event = make_event("ten_a")
        await bus.publish(as_message(event))
        await bus.publish(as_message(event))  # redelivery of the same event
        created = make_event("ten_a", event_type=PaymentCreatedV1)
        await bus.publish(as_message(created))
        rows = await deliveries_of()
        assert len(rows) == 3
        for row in rows:
            await wait_status(row["id"], "succeeded")
        assert sorted(every.ids()) == sorted([event.event_id, created.event_id])
        assert created_only.ids() == [created.event_id]
        assert disabled.hits == []
        assert other_tenant.hits == []
        assert await count("webhook_events") == 2

    async def test_test_event_goes_only_to_that_endpoint(
        self, client, auth, receiver, create_endpoint, wait_status
    ) -> None:
        target = await receiver()
        bystander = await receiver()
        endpoint = await create_endpoint(target)
        await create_endpoint(bystander)
        response = await client.post(f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=auth())
        assert response.status == 202
        delivery = await response.json()
        assert delivery["event_type"] == "webhook.test"
        await wait_status(delivery["id"], "succeeded")
        [hit] = target.hits
        assert json.loads(hit.body)["type"] == "webhook.test"
        assert json.loads(hit.body)["data"]["endpoint_id"] == endpoint["id"]
        assert bystander.hits == []


class TestRetries:
    @pytest.mark.slow
    async def test_fails_then_succeeds_following_the_schedule(
        self, endpoint_at, start_app, auth, receiver, publish
    ) -> None:
        client = await start_app(retry_schedule="0,0.3,0.6,5")
        hook = await receiver(responses=[500, 502], default=200)
        await endpoint_at(client, hook)
        event = await publish()
        delivery = await _only_delivery(client, auth)
        detail = await _wait(client, auth, delivery["id"], "succeeded")
        assert [a["status_code"] for a in detail["attempts"]] == [500, 502, 200]
        assert [a["number"] for a in detail["attempts"]] == [1, 2, 3]
        assert [a["outcome"] for a in detail["attempts"]] == ["failed", "failed", "succeeded"]
        assert detail["attempt_count"] == 3
        assert set(hook.ids()) == {event.event_id}
        gaps = [b.at - a.at for a, b in zip(hook.hits, hook.hits[1:], strict=False)]
        assert 0.3 <= gaps[0] < 0.6 + 0.5
        assert 0.6 <= gaps[1] < 0.6 + 1.0

    async def test_a_worker_without_a_short_poll_sleeps_until_each_retry_falls_due(
        self, endpoint_at, start_app, auth, receiver, publish
    ) -> None:
        # Issue 16 (idle cost): with nothing due the worker sleeps up to a minute here, yet each retry is
        # sent when it falls due: the worker sleeps until the earliest scheduled delivery.
        client = await start_app(retry_schedule="0,0.3,0.6", dispatch_poll_interval=60, dispatch_idle_interval=60)
        hook = await receiver(responses=[500, 502], default=200)
        await endpoint_at(client, hook)
        await publish()
        delivery = await _only_delivery(client, auth)
        detail = await _wait(client, auth, delivery["id"], "succeeded")
        assert [a["status_code"] for a in detail["attempts"]] == [500, 502, 200]
        gaps = [b.at - a.at for a, b in zip(hook.hits, hook.hits[1:], strict=False)]
        assert 0.3 <= gaps[0] < 0.3 + 1.0
        assert 0.6 <= gaps[1] < 0.6 + 1.0
        dispatcher = client.app[dispatcher_key]
        assert await dispatcher._idle_seconds() == 60  # nothing pending: the longest sleep

    async def test_always_failing_ends_failed_then_manual_retry_and_replay_deliver(
        self, client, auth, receiver, create_endpoint, publish, deliveries_of, wait_status
    ) -> None:
        hook = await receiver(default=500)
        endpoint = await create_endpoint(hook)
        await publish()
        [delivery] = await deliveries_of()
        detail = await wait_status(delivery["id"], "failed")
        assert len(detail["attempts"]) == 3  # the test schedule has three entries
        assert detail["next_attempt_at"] is None
        hook.default = 200
        response = await client.post(f"/v1/webhook-deliveries/{delivery['id']}/retry", headers=auth())
        assert response.status == 202
        detail = await wait_status(delivery["id"], "succeeded")
        assert len(detail["attempts"]) == 4
        assert detail["attempts"][-1]["manual"] is True

        # A failed one again, then a replay since a time before it.
        hook.default = 500
        await publish()
        rows = await deliveries_of(status="failed")
        for _ in range(200):
            rows = await deliveries_of(status="failed")
            if rows:
                break
            await _sleep(0.05)
        [failed] = rows
        hook.default = 200
        response = await client.post(
            f"/v1/webhook-endpoints/{endpoint['id']}/replay", json={"since": "2020-01-01T00:00:00Z"}, headers=auth()
        )
        assert response.status == 202
        assert (await response.json())["replayed"] == 1
        await wait_status(failed["id"], "succeeded")
        response = await client.post(
            f"/v1/webhook-endpoints/{endpoint['id']}/replay",
            json={"since": "2020-01-01T00:00:00Z", "status": "all"},
            headers=auth(),
        )
        assert (await response.json())["replayed"] == 2

    async def test_replay_takes_only_deliveries_created_since_the_cut_off(
        self, client, auth, receiver, create_endpoint, publish, deliveries_of, wait_status, clean_db
    ) -> None:
        hook = await receiver(default=500)
        endpoint = await create_endpoint(hook)
        await publish()
        await publish()
        old, recent = sorted(await deliveries_of(), key=lambda d: d["id"])
        for delivery in (old, recent):
            await wait_status(delivery["id"], "failed")
        async with clean_db.begin() as conn:
            await conn.execute(
                text("UPDATE webhook_deliveries SET created_at = :at WHERE id = :id"),
                {"at": datetime(2026, 1, 1, tzinfo=UTC), "id": old["id"]},
            )
        hook.default = 200

        response = await client.post(
            f"/v1/webhook-endpoints/{endpoint['id']}/replay", json={"since": "2026-06-01T00:00:00Z"}, headers=auth()
        )

        assert (await response.json())["replayed"] == 1
        await wait_status(recent["id"], "succeeded")
        await _sleep(0.3)
        detail = await (await client.get(f"/v1/webhook-deliveries/{old['id']}", headers=auth())).json()
        assert detail["status"] == "failed"
        assert len(detail["attempts"]) == 3

    async def test_a_manual_retry_that_fails_is_one_attempt(
        self, client, auth, receiver, create_endpoint, publish, deliveries_of, wait_status
    ) -> None:
        hook = await receiver(default=500)
        await create_endpoint(hook)
        await publish()
        [delivery] = await deliveries_of()
        await wait_status(delivery["id"], "failed")
        await client.post(f"/v1/webhook-deliveries/{delivery['id']}/retry", headers=auth())
        for _ in range(200):
            if len(hook.hits) == 4:
                break
            await _sleep(0.02)
        detail = await wait_status(delivery["id"], "failed")
        await _sleep(0.4)
        assert len(hook.hits) == 4
        assert len(detail["attempts"]) == 4

    @pytest.mark.slow
    async def test_retry_after_is_honoured(self, endpoint_at, start_app, auth, receiver, publish) -> None:
        client = await start_app(retry_schedule="0,0.05,0.05")
        hook = await receiver(responses=[(503, {"Retry-After": "1"})], default=200)
        await endpoint_at(client, hook)
        await publish()
        delivery = await _only_delivery(client, auth)
        await _wait(client, auth, delivery["id"], "succeeded")
        assert hook.hits[1].at - hook.hits[0].at >= 1.0

    async def test_redirects_are_not_followed(
        self, client, auth, receiver, create_endpoint, publish, deliveries_of, wait_status
    ) -> None:
        hook = await receiver(default=(302, {"Location": "/elsewhere"}))
        await create_endpoint(hook)
        await publish()
        [delivery] = await deliveries_of()
        detail = await wait_status(delivery["id"], "failed")
        assert len(hook.hits) == 3
        assert all(h.headers.get("webhook-id") for h in hook.hits)
        assert {a["status_code"] for a in detail["attempts"]} == {302}
        assert "redirect not followed" in detail["attempts"][0]["error"]

    async def test_network_errors_are_recorded(
        self, client, auth, create_endpoint, publish, deliveries_of, wait_status
    ) -> None:
        await create_endpoint(url="http://127.0.0.1:9/nothing-listens")
        await publish()
        [delivery] = await deliveries_of()
        detail = await wait_status(delivery["id"], "failed")
        assert detail["attempts"][0]["status_code"] is None
        assert detail["attempts"][0]["error"].startswith("connection failed")


class TestDisabling:
    async def test_410_disables_the_endpoint_and_tells_the_others(
        self, client, auth, receiver, create_endpoint, publish, deliveries_of, wait_status, bus, eventually
    ) -> None:
        published: list[Message] = []

        async def collect(message: Message) -> None:
            published.append(message)

        await bus.subscribe("test.event-log", ["webhooks.#"], collect)
        gone = await receiver(default=410)
        watcher = await receiver()
        endpoint = await create_endpoint(gone)
        await create_endpoint(watcher, events=["endpoint.disabled"])
        await publish()
        [delivery] = await deliveries_of(endpoint_id=endpoint["id"])
        detail = await wait_status(delivery["id"], "failed")
        assert len(detail["attempts"]) == 1
        state = await (await client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=auth())).json()
        assert state["enabled"] is False
        assert state["disabled_reason"] == "gone"
        [notice] = await deliveries_of(event_type="endpoint.disabled")
        await wait_status(notice["id"], "succeeded")
        [hit] = watcher.hits
        assert hit.verified
        body = json.loads(hit.body)
        assert body["type"] == "endpoint.disabled"
        assert body["data"]["endpoint"]["id"] == endpoint["id"]
        assert body["data"]["endpoint"]["disabled_reason"] == "gone"
        # The same event, under the same id, leaves through the outbox for the tenant's event log.

        async def relayed() -> bool:
            return bool(published)

        await eventually(relayed, 5)
        [message] = published
        assert message.routing_key == "webhooks.endpoint.disabled.v1"
        event = parse_event(message.body)
        assert isinstance(event, EndpointDisabledV1)
        assert (event.event_id, event.tenant_id) == (body["id"], "ten_a")
        assert event.model_dump(mode="json")["data"] == body["data"]

    @pytest.mark.parametrize(("action", "reason"), [("disable", "disabled"), ("delete", "deleted")])
    async def test_disabling_or_deleting_an_endpoint_gives_up_its_pending_deliveries(
        self, start_app, auth, endpoint_at, receiver, publish, eventually, action, reason
    ) -> None:
        client = await start_app(retry_schedule="0,3600")
        endpoint = await endpoint_at(client, await receiver(default=500))
        await publish()
        rows: list[dict] = []

        async def attempted_once() -> bool:
            nonlocal rows
            rows = (await (await client.get("/v1/webhook-deliveries", headers=auth())).json())["data"]
            return bool(rows) and rows[0]["attempt_count"] == 1

        await eventually(attempted_once)
        [delivery] = rows
        assert delivery["status"] == "pending"  # its next attempt is an hour away
        url = f"/v1/webhook-endpoints/{endpoint['id']}"
        if action == "disable":
            assert (await client.patch(url, json={"enabled": False}, headers=auth())).status == 200
        else:
            assert (await client.delete(url, headers=auth())).status == 200

        detail = await (await client.get(f"/v1/webhook-deliveries/{delivery['id']}", headers=auth())).json()
        assert (detail["status"], detail["last_error"]) == ("failed", f"endpoint {reason}")
        assert len(detail["attempts"]) == 1
        metrics = await (await client.get("/metrics")).text()
        assert f'webhook_deliveries_given_up_total{{reason="{reason}"}} 1.0' in metrics

    @pytest.mark.slow
    async def test_an_endpoint_failing_for_too_long_is_disabled(
        self, endpoint_at, start_app, auth, receiver, publish
    ) -> None:
        client = await start_app(retry_schedule="0,0.3,0.3,0.3,0.3,0.3", disable_after_hours=0.5 / 3600)
        failing = await receiver(default=500)
        watcher = await receiver()
        bad = await endpoint_at(client, failing)
        await endpoint_at(client, watcher, events=["endpoint.disabled"])
        await publish()
        for _ in range(300):
            state = await (await client.get(f"/v1/webhook-endpoints/{bad['id']}", headers=auth())).json()
            if not state["enabled"]:
                break
            await _sleep(0.02)
        assert state["disabled_reason"] == "failing"
        assert 2 <= len(failing.hits) <= 4
        for _ in range(200):
            if watcher.hits:
                break
            await _sleep(0.02)
        assert json.loads(watcher.hits[0].body)["type"] == "endpoint.disabled"


class TestMetrics:
    async def test_delivery_metrics_are_exported(
        self, client, auth, receiver, create_endpoint, publish, deliveries_of, wait_status, eventually
    ) -> None:
        hook = await receiver()
        await create_endpoint(hook)
        await publish()
        [delivery] = await deliveries_of()
        await wait_status(delivery["id"], "succeeded")
        text = ""

        async def counted() -> bool:
            # The worker counts the outcome once its record is back, after the API can show it succeeded.
            nonlocal text
            text = await (await client.get("/metrics")).text()
            return 'webhook_deliveries_total{outcome="succeeded"} 1.0' in text

        await eventually(counted)
        assert 'webhook_deliveries_total{outcome="succeeded"} 1.0' in text
        assert "webhook_attempt_duration_seconds_count 1.0" in text
        assert "webhook_due_backlog" in text
        assert "webhook_oldest_pending_age_seconds" in text

    async def test_backlog_gauges_count_due_deliveries_and_their_age(
        self, start_app, auth, endpoint_at, receiver, publish, clean_db
    ) -> None:
        # A worker that consumes but never delivers: the deliveries stay due.
        app = await start_app(worker_concurrency=0)
        await endpoint_at(app, await receiver())
        for _ in range(3):
            await publish()
        async with clean_db.begin() as conn:
            await conn.execute(text("UPDATE webhook_deliveries SET next_attempt_at = now() - interval '90 seconds'"))
        dispatcher = app.app[dispatcher_key]
        watcher = asyncio.create_task(dispatcher.watch_backlog(interval=0.05))
        try:
            for _ in range(100):
                metrics = await (await app.get("/metrics")).text()
                if "webhook_due_backlog 3.0" in metrics:
                    break
                await _sleep(0.02)
        finally:
            watcher.cancel()
        assert "webhook_due_backlog 3.0" in metrics
        [age] = [
            float(line.split()[1]) for line in metrics.splitlines() if line.startswith("webhook_oldest_pending_age")
        ]
        assert 90 <= age < 120


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def _only_delivery(client, auth) -> dict:  # type: ignore[no-untyped-def]
    for _ in range(200):
        rows = (await (await client.get("/v1/webhook-deliveries", headers=auth())).json())["data"]
        if rows:
            return dict(rows[0])
        await _sleep(0.02)
    raise AssertionError("no delivery")


async def _wait(client, auth, delivery_id: str, status: str, timeout: float = 15) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        detail = await (await client.get(f"/v1/webhook-deliveries/{delivery_id}", headers=auth())).json()
        if detail["status"] == status:
            return dict(detail)
        if time.monotonic() > deadline:
            raise AssertionError(f"delivery stayed {detail['status']}: {detail}")
        await _sleep(0.02)
