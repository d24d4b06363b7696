"""The money path ends with a verified webhook at the tenant's receiver, in both modes: the receiver
checks every request with the reference Standard Webhooks verifier."""

import asyncio
import json
import time

import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def _pay(http, platform, payment: dict, outcome: str) -> None:
    token = payment["checkout_token"]
    async with http.post(
        f"{platform.checkout_url}/c/{token}/pay", data={"provider": "sandbox"}, allow_redirects=False
    ) as r:
        provider_page = r.headers["Location"]
    async with http.post(provider_page, data={"outcome": outcome}, allow_redirects=False) as r:
        assert r.status == 303


class TestWebhooks:
    async def test_successful_payment_reaches_the_tenant_as_verified_webhooks(
        self, platform, new_tenant, http, receiver
    ) -> None:
        url, got = receiver
        tenant = await new_tenant()
        async with http.post(
            f"{platform.gateway_url}/v1/webhook-endpoints",
            json={"url": url, "events": ["*"], "description": "e2e"},
            headers=tenant.auth,
        ) as r:
            assert r.status == 201, await r.text()
            endpoint = await r.json()
        secret = endpoint["secret"]
        assert secret.startswith("whsec_")

        payment = await tenant.create_payment("wh-1")
        await _pay(http, platform, payment, "succeed")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            types = [json.loads(body)["type"] for _, body in got]
            if "payment.succeeded" in types:
                break
            await asyncio.sleep(0.1)
        verifier = Webhook(secret)
        bodies = []
        for headers, body in got:
            lowered = {k.lower(): v for k, v in headers.items()}
            bodies.append(verifier.verify(body, lowered))
            assert lowered["webhook-id"] == json.loads(body)["id"]
        types = [b["type"] for b in bodies]
        assert {"payment.created", "payment.pending", "payment.succeeded"} <= set(types)
        succeeded = next(b for b in bodies if b["type"] == "payment.succeeded")
        assert succeeded["data"]["payment"]["id"] == payment["id"]
        assert succeeded["data"]["payment"]["status"] == "SUCCEEDED"
        # The webhook's id is the event's id in the tenant's event log.
        log_ids = {e["id"] for e in await tenant.events()}
        assert {b["id"] for b in bodies} <= log_ids
        # The receiver sees a webhook before the dispatcher records its answer: wait for the records.
        deadline = time.monotonic() + 15
        while True:
            async with http.get(
                f"{platform.gateway_url}/v1/webhook-deliveries",
                params={"endpoint_id": endpoint["id"]},
                headers=tenant.auth,
            ) as r:
                statuses = {d["status"] for d in (await r.json())["data"]}
            if statuses == {"succeeded"} or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert statuses == {"succeeded"}

    async def test_an_endpoint_answering_410_is_disabled_and_the_tenant_told_by_webhook_and_event_log(
        self, platform, new_tenant, http, aiohttp_server
    ) -> None:
        async def gone(request: web.Request) -> web.Response:
            return web.Response(status=410)

        app = web.Application()
        app.router.add_post("/hook", gone)
        server = await aiohttp_server(app, host="127.0.0.1")
        tenant = await new_tenant()
        async with http.post(
            f"{platform.gateway_url}/v1/webhook-endpoints",
            json={"url": f"http://127.0.0.1:{server.port}/hook"},
            headers=tenant.auth,
        ) as r:
            assert r.status == 201, await r.text()
            endpoint = await r.json()
        async with http.post(
            f"{platform.gateway_url}/v1/webhook-endpoints/{endpoint['id']}/test", headers=tenant.auth
        ) as r:
            assert r.status in (200, 201, 202), await r.text()

        # The dispatcher disables it on the 410 and publishes endpoint.disabled; payments-svc logs it.
        deadline = time.monotonic() + 30
        logged: list[dict] = []
        while time.monotonic() < deadline and not logged:
            logged = await tenant.events(type="endpoint.disabled")
            await asyncio.sleep(0.1)
        [event] = logged
        assert event["data"]["endpoint"]["id"] == endpoint["id"]
        assert event["data"]["endpoint"]["disabled_reason"] == "gone"
        async with http.get(f"{platform.gateway_url}/v1/webhook-endpoints/{endpoint['id']}", headers=tenant.auth) as r:
            state = await r.json()
        assert (state["enabled"], state["disabled_reason"]) == (False, "gone")
