"""The connect-time SSRF guard: loopback targets are refused and the refusal is recorded on the
attempt. Only loopback is ever contacted (and in guarded mode not even that)."""

from __future__ import annotations

import pytest


async def _deliver_test_event(api, auth, endpoint_at, hook, url: str, eventually) -> dict:  # type: ignore[no-untyped-def]
    endpoint = await endpoint_at(api, hook, url=url)
    delivery = await (await api.post(f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=auth())).json()
    detail: dict = {}

    async def finished() -> bool:
        nonlocal detail
        detail = await (await api.get(f"/v1/webhook-deliveries/{delivery['id']}", headers=auth())).json()
        return detail["status"] != "pending"

    await eventually(finished, 10)
    return detail


class TestGuardedMode:
    @pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "localhost", "[::ffff:127.0.0.1]"])
    async def test_loopback_targets_are_refused_and_recorded(
        self, start_app, auth, endpoint_at, receiver, eventually, host
    ) -> None:
        hook = await receiver()
        port = hook.url.split(":")[2].split("/")[0]
        # Created through an unguarded API (so IP literals pass creation); delivered by a guarded worker,
        # which is what must hold: the connect-time check is the one that counts.
        api = await start_app(roles=("api",))
        await start_app(roles=("worker",), ssrf_guard=True, retry_schedule="0")
        detail = await _deliver_test_event(api, auth, endpoint_at, hook, f"http://{host}:{port}/hook", eventually)
        assert detail["status"] == "failed"
        [attempt] = detail["attempts"]
        assert attempt["status_code"] is None
        assert "refused by SSRF guard" in attempt["error"]
        assert "loopback" in attempt["error"]
        assert hook.hits == []
        metrics = await (await api.get("/metrics")).text()
        assert "webhook_ssrf_refusals_total" in metrics

    async def test_allow_listed_hosts_are_delivered(self, start_app, auth, endpoint_at, receiver, eventually) -> None:
        hook = await receiver()
        client = await start_app(ssrf_guard=True, allowed_hosts="127.0.0.1, localhost", retry_schedule="0")
        detail = await _deliver_test_event(client, auth, endpoint_at, hook, hook.url, eventually)
        assert detail["status"] == "succeeded"
        assert len(hook.hits) == 1
        port = hook.url.split(":")[2].split("/")[0]
        detail = await _deliver_test_event(client, auth, endpoint_at, hook, f"http://localhost:{port}/x", eventually)
        assert detail["status"] == "succeeded"
