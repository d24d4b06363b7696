"""``livemode`` (API.md "Test mode and live mode"): every webhook body carries the event envelope's at
the top level; endpoints take the tenant's from the internal token, and what they originate
(``webhook.test``, ``endpoint.disabled``) carries it; deliveries show their event's."""

from __future__ import annotations

import json

import pytest
from billing_contracts.events import EndpointDisabledV1, parse_event
from billing_runtime.bus import Message


class TestWebhookBodies:
    @pytest.mark.parametrize("livemode", [True, False])
    async def test_a_payment_event_keeps_its_mode(
        self, client, receiver, create_endpoint, publish, deliveries_of, wait_status, livemode: bool
    ) -> None:
        hook = await receiver()
        await create_endpoint(hook)
        event = await publish(livemode=livemode)
        [delivery] = await deliveries_of()
        assert delivery["livemode"] is livemode
        detail = await wait_status(delivery["id"], "succeeded")
        [hit] = hook.hits
        body = json.loads(hit.body)
        assert body["livemode"] is livemode
        assert body["id"] == event.event_id
        assert detail["event"]["livemode"] is livemode

    async def test_every_attempt_of_a_retried_live_event_has_its_id_and_mode(
        self, client, receiver, create_endpoint, publish, deliveries_of, wait_status
    ) -> None:
        hook = await receiver(responses=[500], default=200)
        await create_endpoint(hook)
        event = await publish(livemode=True)
        [delivery] = await deliveries_of()
        await wait_status(delivery["id"], "succeeded")
        assert hook.ids() == [event.event_id, event.event_id]
        assert all(hit.verified for hit in hook.hits)
        assert all(json.loads(hit.body)["livemode"] is True for hit in hook.hits)
        [row] = await deliveries_of()
        assert row["livemode"] is True

    async def test_a_live_endpoint_and_its_test_event(self, client, auth, receiver, endpoint_at, wait_status) -> None:
        hook = await receiver()
        response = await client.post("/v1/webhook-endpoints", json={"url": hook.url}, headers=auth(livemode=True))
        assert response.status == 201
        endpoint = await response.json()
        hook.secrets.append(endpoint["secret"])
        assert endpoint["livemode"] is True
        listed = await (await client.get("/v1/webhook-endpoints", headers=auth())).json()
        assert [e["livemode"] for e in listed["data"]] == [True]
        sent = await client.post(f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=auth(livemode=True))
        assert sent.status == 202
        delivery = await sent.json()
        assert delivery["livemode"] is True
        await wait_status(delivery["id"], "succeeded")
        assert json.loads(hook.hits[0].body)["livemode"] is True


class TestEndpointDisabled:
    async def test_carries_the_endpoints_mode_to_webhooks_and_the_bus(
        self, client, auth, receiver, publish, deliveries_of, wait_status, bus, eventually
    ) -> None:
        published: list[Message] = []

        async def collect(message: Message) -> None:
            published.append(message)

        await bus.subscribe("test.event-log", ["webhooks.#"], collect)
        gone = await receiver(default=410)
        watcher = await receiver()
        for hook, events in ((gone, ["*"]), (watcher, ["endpoint.disabled"])):
            response = await client.post(
                "/v1/webhook-endpoints", json={"url": hook.url, "events": events}, headers=auth(livemode=True)
            )
            assert response.status == 201
            hook.secrets.append((await response.json())["secret"])
        await publish(livemode=True)
        [notice] = [
            d for d in await _eventually_list(deliveries_of, eventually) if d["event_type"] == "endpoint.disabled"
        ]
        await wait_status(notice["id"], "succeeded")
        assert notice["livemode"] is True
        body = json.loads(watcher.hits[0].body)
        assert (body["type"], body["livemode"]) == ("endpoint.disabled", True)

        async def relayed() -> bool:
            return bool(published)

        await eventually(relayed, 5)
        event = parse_event(published[0].body)
        assert isinstance(event, EndpointDisabledV1)
        assert event.livemode is True


async def _eventually_list(deliveries_of, eventually) -> list[dict]:  # type: ignore[no-untyped-def]
    rows: list[dict] = []

    async def has_notice() -> bool:
        nonlocal rows
        rows = await deliveries_of()
        return any(d["event_type"] == "endpoint.disabled" for d in rows)

    await eventually(has_notice, 10)
    return rows
