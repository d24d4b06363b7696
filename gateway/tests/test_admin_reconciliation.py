"""The gateway's side of the reconciliation admin API: the admin token is required, the request goes to
reconciliation-svc unchanged with a platform token (no tenant), and without its key the routes answer 503
reconciliation_not_configured and forward nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pydantic
import pytest

from .support import FakeUpstream, Gateway, Reply, admin_headers, bearer

pytestmark = pytest.mark.postgres


class TestReconciliationRoutes:
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", "/admin/reconciliation/discrepancies?state=open&limit=5"),
            ("GET", "/admin/reconciliation/discrepancies/dsc_1"),
            ("POST", "/admin/reconciliation/discrepancies/dsc_1/resolve"),
            ("POST", "/admin/reconciliation/discrepancies/dsc_1/ignore"),
            ("POST", "/admin/reconciliation/janitor/run"),
        ],
    )
    async def test_forwarded_with_a_platform_token(
        self, gateway: Gateway, reconciliation: FakeUpstream, method: str, path: str
    ) -> None:
        reconciliation.reply(method, path.partition("?")[0], Reply(200, b'{"ok": true}'))
        resp = await gateway.client.request(method, path, json={"reason": "r"}, headers=admin_headers())
        assert resp.status == 200
        assert await resp.json() == {"ok": True}
        received = reconciliation.last
        assert received.path_qs == path
        assert received.body == b'{"reason": "r"}'
        caller = received.caller("reconciliation")
        assert (caller.service, caller.tenant_id) == ("gateway", None)
        assert "Authorization" not in received.headers  # the admin token stays here

    async def test_the_admin_token_is_required(self, gateway: Gateway, reconciliation: FakeUpstream) -> None:
        _, token = await gateway.tenant_with_token()
        path = "/admin/reconciliation/discrepancies"
        assert (await gateway.client.get(path)).status == 401
        assert (await gateway.client.get(path, headers=bearer(token))).status == 403
        assert reconciliation.received == []

    async def test_an_encoded_slash_never_reaches_reconciliation(
        self, gateway: Gateway, reconciliation: FakeUpstream
    ) -> None:
        resp = await gateway.client.get(
            "/admin/reconciliation/discrepancies/..%2F..%2Finternal%2Fevents", headers=admin_headers()
        )
        assert resp.status == 404
        assert reconciliation.received == []

    async def test_unconfigured_it_answers_503_and_forwards_nothing(
        self, make_gateway: Callable[..., Awaitable[Gateway]], reconciliation: FakeUpstream
    ) -> None:
        gateway = await make_gateway(reconciliation_internal_secret=None)
        resp = await gateway.client.get("/admin/reconciliation/discrepancies", headers=admin_headers())
        assert resp.status == 503
        body = await resp.json()
        assert body["code"] == "reconciliation_not_configured"
        assert "Retry-After" in resp.headers
        assert reconciliation.received == []

    async def test_reconciliation_down_is_503_upstream_unavailable(
        self, make_gateway: Callable[..., Awaitable[Gateway]]
    ) -> None:
        gateway = await make_gateway(reconciliation_url="http://127.0.0.1:9")
        resp = await gateway.client.get("/admin/reconciliation/discrepancies", headers=admin_headers())
        assert resp.status == 503
        assert (await resp.json())["code"] == "upstream_unavailable"
        # A back-office service down does not make the public gateway unready.
        assert (await gateway.client.get("/readyz", headers=admin_headers())).status == 200


class TestReconciliationKey:
    @pytest.mark.parametrize("value", ["short", "dev-internal-secret-change-me-0123456789"])
    def test_a_weak_or_published_key_is_refused_by_name(self, make_settings: Callable[..., object], value: str) -> None:
        with pytest.raises(pydantic.ValidationError, match="GATEWAY_RECONCILIATION_INTERNAL_SECRET") as refused:
            make_settings(reconciliation_internal_secret=value)
        assert value not in str(refused.value)

    def test_empty_means_not_configured(self, make_settings: Callable[..., object]) -> None:
        assert make_settings(reconciliation_internal_secret="").reconciliation_internal_secret is None  # type: ignore[attr-defined]
