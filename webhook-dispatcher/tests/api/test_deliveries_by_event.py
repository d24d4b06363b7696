"""``GET /v1/webhook-deliveries?event_id=`` (an extension beyond API.md): the deliveries of one event,
which is how the dashboard shows the webhooks sent about a payment."""

from __future__ import annotations

from typing import Any


async def _list(client, auth, query: str = "", tenant: str = "ten_a") -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    response = await client.get(f"/v1/webhook-deliveries?{query}", headers=auth(tenant))
    assert response.status == 200, await response.text()
    return list((await response.json())["data"])


class TestDeliveriesOfOneEvent:
    async def test_filters_by_event(self, client, auth, create_endpoint, receiver, publish, eventually) -> None:
        await create_endpoint(await receiver())
        first = await publish()
        second = await publish()

        async def both() -> bool:
            return len(await _list(client, auth)) == 2

        await eventually(both)
        [delivery] = await _list(client, auth, f"event_id={first.event_id}")
        assert delivery["event_id"] == first.event_id
        assert [d["event_id"] for d in await _list(client, auth, f"event_id={second.event_id}")] == [second.event_id]
        # Another tenant never sees it; an id that cannot exist matches nothing.
        assert await _list(client, auth, f"event_id={first.event_id}", tenant="ten_b") == []
        assert await _list(client, auth, "event_id=not-an-event") == []
