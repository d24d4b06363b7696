"""``GET /admin/status``: the services' ``/internal/status`` gathered concurrently, each signed as a
platform call to that service; one that is down, slow or refusing is shown unreachable and the answer is
still a 200. The admin token is required, as on every /admin route."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable

import pytest

from .support import FakeUpstream, Gateway, Reply, admin_headers, bearer, closed_port

pytestmark = pytest.mark.postgres


def _status(service: str, mode: str = "distributed") -> Reply:
    body = {"object": "service_status", "service": service, "mode": mode, "queues": [], "outbox": None}
    return Reply(200, json.dumps(body).encode())


def _answer_all(*upstreams: tuple[str, FakeUpstream]) -> None:
    for name, upstream in upstreams:
        upstream.reply("GET", "/internal/status", _status(name))


class TestPlatformStatus:
    async def test_every_service_is_asked_as_the_gateway_and_shown(
        self,
        gateway: Gateway,
        payments: FakeUpstream,
        providers: FakeUpstream,
        webhooks: FakeUpstream,
        reconciliation: FakeUpstream,
    ) -> None:
        upstreams = {"payments": payments, "providers": providers, "webhooks": webhooks}
        upstreams["reconciliation"] = reconciliation
        _answer_all(*upstreams.items())
        resp = await gateway.client.get("/admin/status", headers=admin_headers())
        assert resp.status == 200, await resp.text()
        assert resp.headers["Cache-Control"] == "no-store"
        body = await resp.json()
        assert body["object"] == "platform_status"
        assert body["mode"] == "distributed"
        assert body["generated_at"]
        assert set(body["services"]) == set(upstreams)
        for name, upstream in upstreams.items():
            assert body["services"][name]["reachable"] is True
            assert body["services"][name]["service"] == name
            received = upstream.last
            assert (received.method, received.path_qs) == ("GET", "/internal/status")
            caller = received.caller(name)
            assert (caller.service, caller.tenant_id) == ("gateway", None)
            assert "Authorization" not in received.headers  # the admin token stays here

    async def test_a_service_down_is_unreachable_and_the_answer_still_200(
        self,
        make_gateway: Callable[..., Awaitable[Gateway]],
        payments: FakeUpstream,
        providers: FakeUpstream,
        webhooks: FakeUpstream,
    ) -> None:
        _answer_all(("payments", payments), ("providers", providers), ("webhooks", webhooks))
        gateway = await make_gateway(reconciliation_url=f"http://127.0.0.1:{closed_port()}")
        resp = await gateway.client.get("/admin/status", headers=admin_headers())
        assert resp.status == 200
        services = (await resp.json())["services"]
        assert services["reconciliation"]["reachable"] is False
        assert services["reconciliation"]["error"].startswith("unreachable")
        assert "127.0.0.1" not in services["reconciliation"]["error"]
        assert all(services[name]["reachable"] for name in ("payments", "providers", "webhooks"))

    async def test_a_slow_service_is_cut_at_the_timeout_and_the_others_answer(
        self,
        make_gateway: Callable[..., Awaitable[Gateway]],
        payments: FakeUpstream,
        providers: FakeUpstream,
        webhooks: FakeUpstream,
        reconciliation: FakeUpstream,
    ) -> None:
        _answer_all(("payments", payments), ("webhooks", webhooks), ("reconciliation", reconciliation))
        providers.reply("GET", "/internal/status", Reply(200, b"{}", delay=3.0))
        gateway = await make_gateway(status_timeout=0.5)
        started = time.monotonic()
        resp = await gateway.client.get("/admin/status", headers=admin_headers())
        # Asked concurrently: the slow one costs its timeout once, not on top of the others.
        assert time.monotonic() - started < 2.5
        assert resp.status == 200
        services = (await resp.json())["services"]
        assert services["providers"] == {"reachable": False, "error": "no answer within 0.5 s"}
        assert services["payments"]["reachable"] is True

    async def test_a_refusal_shows_the_status_and_code(
        self,
        gateway: Gateway,
        payments: FakeUpstream,
        providers: FakeUpstream,
        webhooks: FakeUpstream,
        reconciliation: FakeUpstream,
    ) -> None:
        _answer_all(("providers", providers), ("webhooks", webhooks), ("reconciliation", reconciliation))
        problem = {"type": "about:blank", "title": "Database unavailable", "status": 503}
        problem["code"] = "database_unavailable"
        payments.reply("GET", "/internal/status", Reply(503, json.dumps(problem).encode()))
        body = await (await gateway.client.get("/admin/status", headers=admin_headers())).json()
        assert body["services"]["payments"] == {"reachable": False, "error": "answered 503 database_unavailable"}
        assert body["mode"] == "distributed"

    async def test_reconciliation_not_configured_is_shown_so(
        self,
        make_gateway: Callable[..., Awaitable[Gateway]],
        payments: FakeUpstream,
        providers: FakeUpstream,
        webhooks: FakeUpstream,
        reconciliation: FakeUpstream,
    ) -> None:
        _answer_all(("payments", payments), ("providers", providers), ("webhooks", webhooks))
        gateway = await make_gateway(reconciliation_internal_secret=None)
        body = await (await gateway.client.get("/admin/status", headers=admin_headers())).json()
        assert body["services"]["reconciliation"] == {"reachable": False, "error": "not configured on this gateway"}
        assert reconciliation.received == []

    async def test_the_admin_token_is_required(self, gateway: Gateway, payments: FakeUpstream) -> None:
        _, token = await gateway.tenant_with_token()
        unauthenticated = await gateway.client.get("/admin/status")
        assert unauthenticated.status == 401
        assert unauthenticated.headers["Content-Type"].startswith("application/problem+json")
        assert (await unauthenticated.json())["code"] == "unauthorized"
        tenant = await gateway.client.get("/admin/status", headers=bearer(token))
        assert tenant.status == 403
        assert (await tenant.json())["code"] == "forbidden"
        assert payments.received == []
