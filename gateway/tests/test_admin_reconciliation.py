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


class TestSettlementUploads:
    """``POST /admin/reconciliation/statements`` carries a settlement file (megabytes, multipart): it is
    streamed through under its own limit, not the 64 KiB every JSON body is held to."""

    @staticmethod
    def _multipart(size: int) -> tuple[bytes, str]:
        boundary = "billing-test-boundary"
        line = b"click_trans_id,merchant_trans_id,amount,status,payment_date\n"
        rows = (b"1,pay_1,50000.00,paid,2026-12-04 10:00:00\n" * (size // 40 + 1))[:size]
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="provider"\r\n\r\nclick\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="s.csv"\r\n'
                "Content-Type: text/csv\r\n\r\n"
            ).encode()
            + line
            + rows
            + f"\r\n--{boundary}--\r\n".encode()
        )
        return body, f"multipart/form-data; boundary={boundary}"

    async def test_a_file_larger_than_the_json_limit_arrives_whole_with_its_boundary(
        self, gateway: Gateway, reconciliation: FakeUpstream
    ) -> None:
        body, content_type = self._multipart(300_000)
        reconciliation.reply("POST", "/admin/reconciliation/statements", Reply(201, b'{"id": "stm_1"}'))
        resp = await gateway.client.post(
            "/admin/reconciliation/statements", data=body, headers={**admin_headers(), "Content-Type": content_type}
        )
        assert resp.status == 201, await resp.text()
        assert reconciliation.last.body == body
        assert reconciliation.last.headers["Content-Type"] == content_type
        # Every other route keeps the JSON limit.
        resp = await gateway.client.post(
            "/admin/reconciliation/discrepancies/dsc_1/ignore",
            data=body,
            headers={**admin_headers(), "Content-Type": content_type},
        )
        assert resp.status == 413

    async def test_past_its_limit_it_is_refused_and_nothing_whole_reaches_reconciliation(
        self, make_gateway: Callable[..., Awaitable[Gateway]], reconciliation: FakeUpstream
    ) -> None:
        gateway = await make_gateway(statement_upload_limit=100_000)
        body, content_type = self._multipart(300_000)
        headers = {**admin_headers(), "Content-Type": content_type}
        # Declared up front: refused before a byte is forwarded.
        resp = await gateway.client.post("/admin/reconciliation/statements", data=body, headers=headers)
        assert resp.status == 413
        assert (await resp.json())["code"] == "payload_too_large"

        # Not declared (chunked): refused once the count passes the limit; the upstream's copy breaks off.
        async def chunks():  # type: ignore[no-untyped-def]
            for start in range(0, len(body), 16_384):
                yield body[start : start + 16_384]

        resp = await gateway.client.post("/admin/reconciliation/statements", data=chunks(), headers=headers)
        assert resp.status == 413
        assert (await resp.json())["code"] == "payload_too_large"
        assert all(len(r.body) < len(body) for r in reconciliation.received)

    async def test_an_upload_has_its_own_timeout_not_the_json_one(
        self, make_gateway: Callable[..., Awaitable[Gateway]], reconciliation: FakeUpstream
    ) -> None:
        gateway = await make_gateway(upstream_timeout=0.3, statement_upload_timeout=10)
        body, content_type = self._multipart(100_000)
        headers = {**admin_headers(), "Content-Type": content_type}
        # reconciliation-svc takes a while to parse and stage a file: longer than a JSON call may take.
        reconciliation.reply("POST", "/admin/reconciliation/statements", Reply(201, b'{"id": "stm_1"}', delay=1.0))
        reconciliation.reply("GET", "/admin/reconciliation/discrepancies", Reply(200, b"{}", delay=1.0))
        resp = await gateway.client.post("/admin/reconciliation/statements", data=body, headers=headers)
        assert resp.status == 201, await resp.text()
        resp = await gateway.client.get("/admin/reconciliation/discrepancies", headers=admin_headers())
        assert resp.status == 503
