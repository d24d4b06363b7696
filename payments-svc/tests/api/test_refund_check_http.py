"""``HttpProviders.check_refund`` on the wire, against a fake providers-svc on loopback: the request
docs/INTERNAL.md "Refunds (issue 13)" describes, signed with the payment's mode; providers-svc's
refusal passed on unchanged; anything else, or no answer, is 503."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from billing_runtime.errors import ProblemError
from billing_runtime.internal_auth import INTERNAL_HEADER, verify_internal
from payments_svc.services.providers import RefundCheck
from payments_svc.services.providers_http import HttpProviders

SECRET = "test-providers-internal-secret-0123456789"
CHECK = RefundCheck(
    payment_id="pay_1",
    provider="click",
    amount=2000,
    payment_amount=5000,
    currency="UZS",
    amount_refunded=0,
    paid_at=datetime(2026, 12, 5, 10, 0, tzinfo=UTC),
)


@pytest.fixture
def fake_providers(aiohttp_server):  # type: ignore[no-untyped-def]
    """providers-svc's ``/internal/refunds/check`` answering ``answer`` (status, body); records calls."""

    async def start(status: int, body: Any) -> tuple[HttpProviders, list[tuple[Any, dict[str, Any]]]]:
        calls: list[tuple[Any, dict[str, Any]]] = []

        async def check(request: web.Request) -> web.Response:
            caller = verify_internal(SECRET, request.headers[INTERNAL_HEADER], audience="providers")
            calls.append((caller, await request.json()))
            return web.json_response(body, status=status)

        app = web.Application()
        app.router.add_post("/internal/refunds/check", check)
        server = await aiohttp_server(app, host="127.0.0.1")
        client = HttpProviders(str(server.make_url("/")), SECRET, 2.0)
        await client.open()
        return client, calls

    return start


class TestCheckRefund:
    async def test_a_yes_sends_the_documented_request_with_the_payments_mode(self, fake_providers) -> None:
        client, calls = await fake_providers(200, {"refundable": True})
        try:
            await client.check_refund("ten_a", CHECK, livemode=True)
        finally:
            await client.close()
        [(caller, body)] = calls
        assert (caller.service, caller.tenant_id, caller.livemode) == ("payments", "ten_a", True)
        assert body == {
            "payment_id": "pay_1",
            "provider": "click",
            "amount": 2000,
            "payment_amount": 5000,
            "currency": "UZS",
            "amount_refunded": 0,
            "paid_at": "2026-12-05T10:00:00Z",
        }

    @pytest.mark.parametrize(
        ("status", "body"),
        [
            (409, {"title": "Conflict", "status": 409, "code": "refund_window_closed", "detail": "Not this month."}),
            (
                422,
                {
                    "title": "Validation failed",
                    "status": 422,
                    "code": "partial_refund_not_supported",
                    "detail": "Click reverses whole payments only.",
                    "errors": [{"field": "amount", "message": "must be 5000"}],
                    "payment_amount": 5000,
                    "request_id": "req_theirs",
                },
            ),
        ],
    )
    async def test_a_refusal_is_passed_on_unchanged(self, fake_providers, status, body) -> None:
        client, _calls = await fake_providers(status, body)
        try:
            with pytest.raises(ProblemError) as raised:
                await client.check_refund("ten_a", CHECK, livemode=False)
        finally:
            await client.close()
        problem = raised.value
        assert (problem.status, problem.code, problem.detail, problem.title) == (
            status,
            body["code"],
            body["detail"],
            body["title"],
        )
        assert [e.model_dump() for e in problem.errors or []] == body.get("errors", [])
        # Its extension members travel too; its request id is providers-svc's, not the tenant's.
        assert problem.extensions == ({"payment_amount": 5000} if status == 422 else {})

    @pytest.mark.parametrize(
        ("status", "body"), [(200, {"refundable": False}), (200, {}), (500, {"code": "internal_error"}), (409, {})]
    )
    async def test_anything_else_is_503(self, fake_providers, status, body) -> None:
        client, _calls = await fake_providers(status, body)
        try:
            with pytest.raises(ProblemError) as raised:
                await client.check_refund("ten_a", CHECK, livemode=False)
        finally:
            await client.close()
        assert (raised.value.status, raised.value.code) == (503, "provider_unavailable")

    async def test_providers_svc_down_is_503(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        client = HttpProviders(f"http://127.0.0.1:{port}", SECRET, 2.0)
        await client.open()
        try:
            with pytest.raises(ProblemError) as raised:
                await client.check_refund("ten_a", CHECK, livemode=False)
        finally:
            await client.close()
        assert (raised.value.status, raised.value.code) == (503, "provider_unavailable")


async def test_one_token_is_reused_per_tenant_and_mode(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    # Signing a token per call cost payments-api a few percent of its CPU; a token names only the
    # caller, the tenant and the mode, so each (tenant, mode) reuses one while it is fresh.
    tokens: list[str] = []

    async def check(request: web.Request) -> web.Response:
        tokens.append(request.headers[INTERNAL_HEADER])
        return web.json_response({"refundable": True})

    app = web.Application()
    app.router.add_post("/internal/refunds/check", check)
    server = await aiohttp_server(app, host="127.0.0.1")
    client = HttpProviders(str(server.make_url("/")), SECRET, 2.0)
    await client.open()
    try:
        for tenant, livemode in [("ten_a", False), ("ten_a", False), ("ten_b", False), ("ten_a", True)]:
            await client.check_refund(tenant, CHECK, livemode=livemode)
    finally:
        await client.close()
    a_test, a_test_again, b_test, a_live = tokens
    assert a_test == a_test_again
    assert len({a_test, b_test, a_live}) == 3
    callers = [verify_internal(SECRET, t, audience="providers") for t in (b_test, a_live)]
    assert [(c.tenant_id, c.livemode) for c in callers] == [("ten_b", False), ("ten_a", True)]
