"""``POST /v1/webhook-deliveries/{id}/retry`` (API.md, WHK-11): one attempt now, whatever the
delivery's state; a pending delivery keeps its automatic schedule after it unless it succeeds."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest


async def _detail(client: Any, auth: Any, delivery_id: str) -> dict[str, Any]:
    return dict(await (await client.get(f"/v1/webhook-deliveries/{delivery_id}", headers=auth())).json())


async def _until(client: Any, auth: Any, delivery_id: str, check: Any, timeout: float = 10.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            detail = await _detail(client, auth, delivery_id)
            if check(detail):
                return detail
            await asyncio.sleep(0.02)


async def _only_delivery(client: Any, auth: Any) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            rows = (await (await client.get("/v1/webhook-deliveries", headers=auth())).json())["data"]
            if rows:
                return dict(rows[0])
            await asyncio.sleep(0.02)


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def _retry(client: Any, auth: Any, delivery_id: str) -> None:
    response = await client.post(f"/v1/webhook-deliveries/{delivery_id}/retry", headers=auth())
    assert response.status == 202, await response.text()


class TestRetryOfAPendingDelivery:
    async def test_a_failed_manual_attempt_keeps_the_automatic_schedule(
        self, start_app, auth, receiver, endpoint_at, publish
    ) -> None:
        client = await start_app(retry_schedule="0,3600,3600")
        hook = await receiver(default=500)
        await endpoint_at(client, hook)
        await publish()
        delivery = await _only_delivery(client, auth)
        first = await _until(client, auth, delivery["id"], lambda d: d["attempt_count"] == 1)
        scheduled = first["next_attempt_at"]
        assert first["status"] == "pending"
        assert _at(scheduled) > _at(first["last_attempt_at"])

        await _retry(client, auth, delivery["id"])
        after = await _until(client, auth, delivery["id"], lambda d: d["attempt_count"] == 2)
        # The merchant did not wait an hour; the schedule is where it was, not pushed a step on.
        assert len(hook.hits) == 2
        assert [a["manual"] for a in after["attempts"]] == [False, True]
        assert after["status"] == "pending"
        assert after["next_attempt_at"] == scheduled
        await asyncio.sleep(0.3)
        assert len(hook.hits) == 2

    async def test_a_successful_manual_attempt_ends_it(self, start_app, auth, receiver, endpoint_at, publish) -> None:
        client = await start_app(retry_schedule="0,3600,3600")
        hook = await receiver(responses=[500], default=200)
        await endpoint_at(client, hook)
        await publish()
        delivery = await _only_delivery(client, auth)
        await _until(client, auth, delivery["id"], lambda d: d["attempt_count"] == 1)
        await _retry(client, auth, delivery["id"])
        done = await _until(client, auth, delivery["id"], lambda d: d["status"] == "succeeded")
        assert done["next_attempt_at"] is None
        assert len(done["attempts"]) == 2
        await asyncio.sleep(0.3)
        assert len(hook.hits) == 2

    async def test_a_retry_during_an_attempt_makes_one_more_after_it(
        self, start_app, auth, receiver, endpoint_at, publish
    ) -> None:
        client = await start_app(retry_schedule="0,3600,3600", request_timeout=3, lease_seconds=10)
        hook = await receiver(default=500, delay=0.5)
        await endpoint_at(client, hook)
        await publish()
        delivery = await _only_delivery(client, auth)
        async with asyncio.timeout(5):
            while not hook.hits:
                await asyncio.sleep(0.01)
        # The first attempt is in flight now (the receiver holds it for 0.5 s).
        await _retry(client, auth, delivery["id"])
        after = await _until(client, auth, delivery["id"], lambda d: d["attempt_count"] == 2)
        assert [a["manual"] for a in after["attempts"]] == [False, True]
        assert after["status"] == "pending"
        # The automatic schedule resumes: the second step, about an hour after the first attempt.
        gap = (_at(after["next_attempt_at"]) - _at(after["attempts"][0]["started_at"])).total_seconds()
        assert 3500 < gap < 3700
        await asyncio.sleep(0.8)
        assert len(hook.hits) == 2


class TestRetryOfAnEndedDelivery:
    @pytest.mark.parametrize("answer", [200, 500])
    async def test_one_more_attempt_now(self, start_app, auth, receiver, endpoint_at, publish, answer: int) -> None:
        client = await start_app(retry_schedule="0")
        hook = await receiver(default=answer)
        await endpoint_at(client, hook)
        await publish()
        delivery = await _only_delivery(client, auth)
        final = "succeeded" if answer == 200 else "failed"
        await _until(client, auth, delivery["id"], lambda d: d["status"] == final)
        await _retry(client, auth, delivery["id"])
        again = await _until(client, auth, delivery["id"], lambda d: d["attempt_count"] == 2)
        assert again["status"] == final
        assert again["next_attempt_at"] is None
        assert len(hook.hits) == 2
        # A redelivery: the same event id, so the receiver can dedupe it.
        assert hook.hits[0].headers["webhook-id"] == hook.hits[1].headers["webhook-id"]

    async def test_a_disabled_endpoint_is_409(self, start_app, auth, receiver, endpoint_at, publish) -> None:
        client = await start_app(retry_schedule="0")
        hook = await receiver(default=200)
        endpoint = await endpoint_at(client, hook)
        await publish()
        delivery = await _only_delivery(client, auth)
        await _until(client, auth, delivery["id"], lambda d: d["status"] == "succeeded")
        patched = await client.patch(f"/v1/webhook-endpoints/{endpoint['id']}", json={"enabled": False}, headers=auth())
        assert patched.status == 200
        response = await client.post(f"/v1/webhook-deliveries/{delivery['id']}/retry", headers=auth())
        assert response.status == 409
        assert (await response.json())["code"] == "endpoint_disabled"
