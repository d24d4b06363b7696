"""Other services' tenant-facing events (the dispatcher's ``endpoint.disabled``) join the tenant's event
log from the bus: once per event id, under that id, visible only to that tenant."""

import asyncio
from datetime import UTC, datetime

from billing_contracts.events import DisabledEndpoint, EndpointDisabledData, EndpointDisabledV1
from billing_runtime.bus import Message


def _disabled(tenant: str = "ten_a") -> EndpointDisabledV1:
    at = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
    return EndpointDisabledV1(
        tenant_id=tenant,
        occurred_at=at,
        data=EndpointDisabledData(
            endpoint=DisabledEndpoint(
                id="we_1", url="https://shop.example/hooks", disabled_reason="gone", disabled_at=at
            )
        ),
    )


def _message(event: EndpointDisabledV1) -> Message:
    return Message(
        routing_key="webhooks.endpoint.disabled.v1", body=event.model_dump_json().encode(), message_id=event.event_id
    )


async def _logged(client, auth, tenant: str = "ten_a") -> list[dict]:  # type: ignore[no-untyped-def]
    response = await client.get("/v1/events?type=endpoint.disabled", headers=auth(tenant))
    assert response.status == 200
    return list((await response.json())["data"])


class TestLoggedEvents:
    async def test_endpoint_disabled_is_logged_once_under_its_own_id(self, client, auth, bus) -> None:
        event = _disabled()
        # A redelivery (the broker's at-least-once) must not log it twice.
        await bus.publish(_message(event))
        await bus.publish(_message(event))
        for _ in range(100):
            if await _logged(client, auth):
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)

        [logged] = await _logged(client, auth)

        assert logged["id"] == event.event_id
        assert logged["type"] == "endpoint.disabled"
        assert logged["created_at"] == "2026-11-29T10:00:00Z"
        assert logged["data"] == event.model_dump(mode="json")["data"]
        assert logged["data"]["endpoint"]["disabled_reason"] == "gone"
        assert await _logged(client, auth, "ten_b") == []
        # Skipped by the inbox, not refused by the log's unique id (that would fail, be retried and end
        # in the dead letters).
        metrics = await (await client.get("/metrics")).text()
        assert 'outcome="duplicate"} 1.0' in metrics
        assert bus.dead_letters == []
