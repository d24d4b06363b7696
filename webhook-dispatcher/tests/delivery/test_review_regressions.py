"""Regressions found in review: hostile responses, manual retries of pending deliveries, stale
failure marks, and malformed API input that used to give 500s."""

import pytest
from sqlalchemy import select, update
from webhook_dispatcher.db.models import Endpoint
from webhook_dispatcher.domain.schedule import parse_retry_after
from webhook_dispatcher.settings import Settings


class TestHostileResponses:
    @pytest.mark.parametrize("value", ["²", "١٢", "1e3", "-5", "", "9" * 40])
    def test_odd_retry_after_values_never_raise(self, value: str) -> None:
        assert parse_retry_after(value) is None or parse_retry_after(value) >= 0

    async def test_unicode_digit_retry_after_is_recorded_not_looped(
        self, client, receiver, create_endpoint, publish, deliveries_of, wait_status
    ) -> None:
        hook = await receiver(responses=[(503, {"Retry-After": "²"})], default=200)
        await create_endpoint(hook)
        await publish()
        [delivery] = await deliveries_of()
        detail = await wait_status(delivery["id"], "succeeded")
        assert [a["status_code"] for a in detail["attempts"]] == [503, 200]

    async def test_undecodable_location_is_recorded(
        self, client, receiver, create_endpoint, publish, deliveries_of, wait_status
    ) -> None:
        hook = await receiver(responses=[(302, {"Location": "/\udcff\udcfe"})], default=200)
        await create_endpoint(hook)
        await publish()
        [delivery] = await deliveries_of()
        detail = await wait_status(delivery["id"], "succeeded")
        assert len(detail["attempts"]) == 2
        assert "redirect not followed" in detail["attempts"][0]["error"]


class TestFailingMark:
    async def test_success_on_a_healthy_endpoint_clears_a_stale_failure_mark(
        self, client, receiver, create_endpoint, publish, deliveries_of, wait_status, clean_db
    ) -> None:
        hook = await receiver(default=200)
        endpoint = await create_endpoint(hook)
        await publish()
        [first] = await deliveries_of()
        await wait_status(first["id"], "succeeded")
        # A failure elsewhere marked the endpoint failing after this worker's claim saw it healthy.
        from billing_contracts.envelope import utcnow

        async with clean_db.begin() as conn:
            await conn.execute(
                update(Endpoint.__table__).where(Endpoint.id == endpoint["id"]).values(failing_since=utcnow())
            )
        await publish()
        for _ in range(200):
            async with clean_db.connect() as conn:
                mark = (
                    await conn.execute(select(Endpoint.failing_since).where(Endpoint.id == endpoint["id"]))
                ).scalar_one()
            if mark is None:
                break
            await __import__("asyncio").sleep(0.02)
        assert mark is None


class TestMalformedInput:
    async def test_nul_in_description_is_422(self, client, auth) -> None:
        response = await client.post(
            "/v1/webhook-endpoints", json={"url": "https://a.example/h", "description": "a\u0000b"}, headers=auth()
        )
        assert response.status == 422

    @pytest.mark.parametrize("since", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
    async def test_out_of_range_replay_since_is_422(self, client, auth, create_endpoint, since) -> None:
        endpoint = await create_endpoint()
        response = await client.post(
            f"/v1/webhook-endpoints/{endpoint['id']}/replay", json={"since": since}, headers=auth()
        )
        assert response.status == 422

    def test_retry_schedule_must_start_immediately(self) -> None:
        with pytest.raises(ValueError, match="must start with 0"):
            Settings(retry_schedule="5,10", encryption_key="x" * 44)
