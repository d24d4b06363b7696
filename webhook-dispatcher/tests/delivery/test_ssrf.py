"""The connect-time SSRF guard, on in every mode: loopback targets are refused unless loopback is
explicitly allowed, the platform's own ports are refused whatever is allowed, and the refusal is
recorded on the attempt. Only loopback is ever contacted (and when refused, not even that)."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError
from webhook_dispatcher.settings import Settings


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


def _port(url: str) -> str:
    return url.split(":")[2].split("/")[0]


class TestLoopbackNotAllowed:
    @pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "localhost", "[::ffff:127.0.0.1]"])
    async def test_loopback_targets_are_refused_and_recorded(
        self, start_app, auth, endpoint_at, receiver, eventually, host
    ) -> None:
        hook = await receiver()
        # Created through an API that allows loopback (so IP literals pass creation); delivered by a
        # worker that does not, which is what must hold: the connect-time check is the one that counts.
        api = await start_app(roles=("api",))
        await start_app(roles=("worker",), allow_loopback=False, retry_schedule="0")
        url = f"http://{host}:{_port(hook.url)}/hook"
        detail = await _deliver_test_event(api, auth, endpoint_at, hook, url, eventually)
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
        client = await start_app(allow_loopback=False, allowed_hosts="127.0.0.1, localhost", retry_schedule="0")
        detail = await _deliver_test_event(client, auth, endpoint_at, hook, hook.url, eventually)
        assert detail["status"] == "succeeded"
        assert len(hook.hits) == 1
        url = f"http://localhost:{_port(hook.url)}/x"
        detail = await _deliver_test_event(client, auth, endpoint_at, hook, url, eventually)
        assert detail["status"] == "succeeded"


class TestPlatformPorts:
    @pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
    async def test_refused_however_loopback_is_allowed(
        self, start_app, auth, endpoint_at, receiver, eventually, host
    ) -> None:
        # The receiver stands in for a platform service: its port is in the worker's platform list.
        platform = await receiver()
        port = _port(platform.url)
        api = await start_app(roles=("api",))
        await start_app(
            roles=("worker",),
            allow_loopback=True,
            allowed_hosts="127.0.0.1,localhost,::ffff:127.0.0.1",
            platform_addresses=f"127.0.0.1:{port}",
            retry_schedule="0",
        )
        url = f"http://{host}:{port}/v1/payments"
        detail = await _deliver_test_event(api, auth, endpoint_at, platform, url, eventually)
        assert detail["status"] == "failed"
        [attempt] = detail["attempts"]
        assert "a port of the platform itself" in attempt["error"]
        assert attempt["response_body"] in (None, "")
        assert platform.hits == []

    async def test_named_platform_listeners_are_resolved(
        self, start_app, auth, endpoint_at, receiver, eventually
    ) -> None:
        platform = await receiver()
        port = _port(platform.url)
        api = await start_app(roles=("api",))
        await start_app(roles=("worker",), platform_addresses=f"localhost:{port}", retry_schedule="0")
        url = f"http://127.0.0.1:{port}/hook"
        detail = await _deliver_test_event(api, auth, endpoint_at, platform, url, eventually)
        assert "a port of the platform itself" in detail["attempts"][0]["error"]
        assert platform.hits == []

    async def test_refused_at_creation_for_ip_literals(self, start_app, auth) -> None:
        client = await start_app(allow_loopback=True, platform_addresses="127.0.0.1:8000")
        for url in ("http://127.0.0.1:8000/v1", "http://[::1]:8000/", "http://127.0.0.1:8003/"):
            # 8003 is this dispatcher's own default port: always in the list.
            response = await client.post("/v1/webhook-endpoints", json={"url": url}, headers=auth())
            assert response.status == 422, url
            assert (await response.json())["detail"].endswith("points to a port of the platform itself")


def _settings(**values: object) -> Settings:
    """Settings as a deployment gives them (secrets set), with nothing loosened unless asked."""
    secrets = {
        "internal_secret": "ssrf-test-internal-secret-0123456789ab",
        "encryption_key": Fernet.generate_key().decode(),
    }
    return Settings(**secrets, **values)  # type: ignore[arg-type]


class TestSettings:
    def test_the_guard_cannot_be_turned_off(self) -> None:
        with pytest.raises(ValidationError, match="cannot be turned off"):
            _settings(ssrf_guard=False)

    def test_loopback_is_refused_by_default(self) -> None:
        policy = _settings().address_policy
        assert policy.refusal("127.0.0.1", "127.0.0.1", 9999) == "loopback address"
        assert policy.refusal("x", "127.0.0.1", 8000) == "a port of the platform itself"

    @pytest.mark.parametrize("raw", ["127.0.0.1", "127.0.0.1:0", "host:port", ":80"])
    def test_bad_platform_addresses_stop_the_start(self, raw: str) -> None:
        with pytest.raises(ValidationError, match="platform_addresses"):
            _settings(platform_addresses=raw)
