"""Provider callbacks the gateway refuses itself (a body over its limit, an unsafe path, providers-svc
unreachable) are answered in the provider's own format, never problem+json: Payme a JSON-RPC error with
HTTP 200, Click its JSON with HTTP 200 (ids echoed where the request carried them), the others by the
status with ``{"error": ...}``; each refusal counted by provider and reason."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from .support import FakeUpstream, Gateway, admin_headers, closed_port, raw_request

pytestmark = pytest.mark.postgres

BIG = b"a" * (64 * 1024 + 1)
CLICK_FORM = "application/x-www-form-urlencoded"


@pytest.fixture
async def unreachable(make_gateway: Callable[..., Awaitable[Gateway]]) -> Gateway:
    """A gateway whose providers-svc is down (a closed port on loopback)."""
    return await make_gateway(providers_url=f"http://127.0.0.1:{closed_port()}")


async def refused(gateway: Gateway, provider: str, reason: str) -> float:
    metrics = await (await gateway.client.get("/metrics", headers=admin_headers())).text()
    line = f'gateway_callbacks_refused_total{{provider="{provider}",reason="{reason}"}} '
    found = [row for row in metrics.splitlines() if row.startswith(line)]
    return float(found[0].rsplit(" ", 1)[1]) if found else 0.0


class TestPayme:
    async def test_a_body_over_the_limit_is_a_json_rpc_error_with_200(
        self, gateway: Gateway, providers: FakeUpstream
    ) -> None:
        resp = await gateway.client.post("/billing/payme", data=BIG, headers={"Content-Type": "application/json"})
        assert resp.status == 200
        assert resp.content_type == "application/json"
        body = await resp.json()
        assert (body["jsonrpc"], body["id"], body["error"]["code"]) == ("2.0", None, -32600)
        assert set(body["error"]["message"]) == {"ru", "uz", "en"}
        assert providers.received == []
        assert await refused(gateway, "payme", "too_large") == 1

    async def test_providers_away_is_a_system_error_for_the_request_id(self, unreachable: Gateway) -> None:
        call = {"jsonrpc": "2.0", "id": 4242, "method": "CheckTransaction", "params": {"id": "x"}}
        resp = await unreachable.client.post("/billing/payme", json=call, headers={"Authorization": "Basic eA=="})
        assert resp.status == 200
        body = await resp.json()
        assert (body["id"], body["error"]["code"]) == (4242, -32400)
        assert await refused(unreachable, "payme", "unavailable") == 1
        # A body that names no id (or not one JSON-RPC allows) is answered with none.
        for junk in (b"not json", b'{"id": true}', b'[{"id": 1}]'):
            resp = await unreachable.client.post("/billing/payme", data=junk)
            assert (resp.status, (await resp.json())["id"]) == (200, None)


class TestClick:
    async def test_a_body_over_the_limit_is_minus_8_with_200(self, gateway: Gateway, providers: FakeUpstream) -> None:
        resp = await gateway.client.post("/billing/click/prepare", data=BIG, headers={"Content-Type": CLICK_FORM})
        assert resp.status == 200
        assert await resp.json() == {
            "click_trans_id": None,
            "merchant_trans_id": None,
            "merchant_prepare_id": None,
            "error": -8,
            "error_note": "Error in request from click",
        }
        assert providers.received == []

    @pytest.mark.parametrize(
        ("path", "confirm"), [("prepare", "merchant_prepare_id"), ("complete", "merchant_confirm_id")]
    )
    async def test_providers_away_is_minus_7_with_clicks_ids(
        self, unreachable: Gateway, path: str, confirm: str
    ) -> None:
        form = "click_trans_id=9001&service_id=111&merchant_trans_id=pay_1&amount=1000&action=0&error=0"
        resp = await unreachable.client.post(f"/billing/click/{path}", data=form, headers={"Content-Type": CLICK_FORM})
        assert resp.status == 200
        assert await resp.json() == {
            "click_trans_id": 9001,
            "merchant_trans_id": "pay_1",
            confirm: None,
            "error": -7,
            "error_note": "Failed to update user",
        }
        assert await refused(unreachable, "click", "unavailable") == 1


class TestTheOthers:
    @pytest.mark.parametrize("path", ["/billing/octo", "/billing/stripe", "/billing/sandbox"])
    async def test_providers_away_is_a_503_they_send_again(self, unreachable: Gateway, path: str) -> None:
        resp = await unreachable.client.post(path, data=b"{}", headers={"Content-Type": "application/json"})
        assert resp.status == 503
        assert resp.content_type == "application/json"
        assert resp.headers["Retry-After"].isdigit()
        assert await resp.json() == {"error": "temporarily_unavailable"}

    async def test_stripe_events_pass_up_to_providers_limit_and_a_larger_one_is_a_413_of_its_kind(
        self, gateway: Gateway, providers: FakeUpstream
    ) -> None:
        # Larger than the gateway's 64 KiB, within providers-svc's 512 KiB for Stripe: passed on whole.
        event = b'{"id": "evt_1", "data": "' + b"x" * (300 * 1024) + b'"}'
        resp = await gateway.client.post("/billing/stripe", data=event, headers={"Content-Type": "application/json"})
        assert resp.status == 200
        assert providers.last.body == event
        too_big = b"a" * (512 * 1024 + 1)
        resp = await gateway.client.post("/billing/stripe", data=too_big, headers={"Content-Type": "application/json"})
        assert (resp.status, resp.content_type) == (413, "application/json")
        assert await resp.json() == {"error": "payload_too_large"}
        assert len(providers.received) == 1
        assert await refused(gateway, "stripe", "too_large") == 1

    async def test_a_declared_stripe_event_goes_on_whole_and_an_undeclared_one_is_streamed_and_counted(
        self, gateway: Gateway, providers: FakeUpstream
    ) -> None:
        # Declared (as Stripe always sends it): read whole, passed on with its length, not chunked.
        event = b'{"id": "evt_1", "data": "' + b"x" * (100 * 1024) + b'"}'
        resp = await gateway.client.post("/billing/stripe", data=event, headers={"Content-Type": "application/json"})
        assert resp.status == 200
        assert providers.last.body == event
        assert providers.last.headers["Content-Length"] == str(len(event))
        assert "Transfer-Encoding" not in providers.last.headers

        # Undeclared (chunked): streamed, within the limit passed on, past it refused as it is counted.
        def chunked(size: int) -> Any:
            async def chunks() -> Any:
                for _ in range(size // 65536):
                    yield b"y" * 65536

            return chunks()

        resp = await gateway.client.post("/billing/stripe", data=chunked(256 * 1024))
        assert resp.status == 200
        assert providers.last.body == b"y" * (256 * 1024)
        resp = await gateway.client.post("/billing/stripe", data=chunked(640 * 1024))
        assert (resp.status, await resp.json()) == (413, {"error": "payload_too_large"})
        assert await refused(gateway, "stripe", "too_large") == 1

    async def test_an_unsafe_path_under_a_provider_is_refused_in_its_format(
        self, gateway: Gateway, providers: FakeUpstream
    ) -> None:
        resp = await raw_request(gateway.client, "POST", "/billing/payme/..%2finternal", {})
        assert resp.status == 200
        assert json.loads(resp.body)["error"]["code"] == -32600
        # A path that names no provider of ours is nobody's: the usual problem+json.
        resp = await raw_request(gateway.client, "POST", "/billing/..%5cinternal", {})
        assert (resp.status, resp.headers["Content-Type"]) == (404, "application/problem+json")
        assert providers.received == []
        assert await refused(gateway, "payme", "bad_path") == 1
