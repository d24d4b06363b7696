"""A tenant's allowed origins: validated and normalised by the admin API, shown in the tenant object,
and added to the checkout view of the tenant's payments (the hosted page's ``frame-ancestors``)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from gateway.origins import normalise_origin

from .support import FakeUpstream, Gateway, Reply, admin_headers, problem

VIEW = {"status": "CREATED", "amount": 5000, "currency": "USD", "merchant": {"display_name": "Shop One"}}


class TestNormaliseOrigin:
    @pytest.mark.parametrize(
        ("given", "stored"),
        [
            ("https://shop.example", "https://shop.example"),
            ("HTTPS://Shop.Example:443/", "https://shop.example"),
            ("https://shop.example:8443", "https://shop.example:8443"),
            ("http://127.0.0.1:8070", "http://127.0.0.1:8070"),
            ("http://localhost:80", "http://localhost"),
            ("http://shop.localhost:3000", "http://shop.localhost:3000"),
            ("https://xn--bcher-kva.example", "https://xn--bcher-kva.example"),
        ],
    )
    def test_normalised(self, given: str, stored: str) -> None:
        assert normalise_origin(given) == stored

    @pytest.mark.parametrize(
        "given",
        [
            "http://shop.example",  # http only for loopback
            "http://10.0.0.1",
            "https://shop.example/path",
            "https://shop.example?q=1",
            "https://*.shop.example",
            "*",
            "'self'",
            "https://user@shop.example",
            "https://[::1]:8070",
            "ftp://shop.example",
            "javascript://shop.example",
            "https://shop.example:0",
            "https://shop.example:70000",
            "https://bücher.example",
            "https://shop.example; script-src *",
            "https://shop..example",
            "",
        ],
    )
    def test_refused(self, given: str) -> None:
        with pytest.raises(ValueError, match="must"):
            normalise_origin(given)


async def _tenant(gateway: Gateway, **fields: Any) -> Any:
    body = {"app_name": "shop-1", "display_name": "Shop One", **fields}
    return await gateway.client.post("/admin/tenants", json=body, headers=admin_headers())


class TestAdminApi:
    async def test_default_is_empty(self, gateway: Gateway) -> None:
        tenant = await gateway.create_tenant()
        assert tenant["allowed_origins"] == []

    async def test_create_normalises_and_shows(self, gateway: Gateway) -> None:
        resp = await _tenant(
            gateway, allowed_origins=["HTTPS://Shop.Example/", "https://shop.example", "http://127.0.0.1:8070"]
        )
        assert resp.status == 201
        tenant = await resp.json()
        assert tenant["allowed_origins"] == ["https://shop.example", "http://127.0.0.1:8070"]
        shown = await (await gateway.client.get(f"/admin/tenants/{tenant['id']}", headers=admin_headers())).json()
        assert shown["allowed_origins"] == tenant["allowed_origins"]

    async def test_bad_origin_is_422_naming_the_field_and_creates_nothing(self, gateway: Gateway) -> None:
        resp = await _tenant(gateway, allowed_origins=["https://ok.example", "http://shop.example"])
        body = await problem(resp, 422, "validation_error")
        assert body["errors"][0]["field"] == "allowed_origins.1"
        assert "https" in body["errors"][0]["message"]
        listed = await (await gateway.client.get("/admin/tenants", headers=admin_headers())).json()
        assert listed["data"] == []

    @pytest.mark.parametrize("value", ["https://shop.example", [1], None, [f"https://s{i}.example" for i in range(21)]])
    async def test_not_a_list_of_at_most_20_origins_is_422(self, gateway: Gateway, value: Any) -> None:
        body = await problem(await _tenant(gateway, allowed_origins=value), 422, "validation_error")
        assert body["errors"][0]["field"].startswith("allowed_origins")

    async def test_patch_replaces_them_and_leaves_disabled(self, gateway: Gateway) -> None:
        tenant = await gateway.create_tenant()
        url = f"/admin/tenants/{tenant['id']}"
        resp = await gateway.client.patch(url, json={"allowed_origins": ["https://a.example"]}, headers=admin_headers())
        assert resp.status == 200
        assert (await resp.json())["allowed_origins"] == ["https://a.example"]
        resp = await gateway.client.patch(url, json={"disabled": True}, headers=admin_headers())
        patched = await resp.json()
        assert patched["allowed_origins"] == ["https://a.example"]
        assert patched["disabled"] is True
        resp = await gateway.client.patch(url, json={"allowed_origins": []}, headers=admin_headers())
        assert (await resp.json())["allowed_origins"] == []

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"allowed_origins": ["https://a.example/x"]}, "allowed_origins.0"),
            ({"allowed_origins": None}, "allowed_origins"),
            ({"disabled": None}, "disabled"),
            ({}, "body"),
        ],
    )
    async def test_bad_patch_is_422_and_changes_nothing(self, gateway: Gateway, body: Any, field: str) -> None:
        tenant = await gateway.create_tenant()
        url = f"/admin/tenants/{tenant['id']}"
        await gateway.client.patch(url, json={"allowed_origins": ["https://a.example"]}, headers=admin_headers())
        problem_body = await problem(
            await gateway.client.patch(url, json=body, headers=admin_headers()), 422, "validation_error"
        )
        assert problem_body["errors"][0]["field"] == field
        shown = await (await gateway.client.get(url, headers=admin_headers())).json()
        assert shown["allowed_origins"] == ["https://a.example"]
        assert shown["disabled"] is False


class TestCheckoutView:
    def _view(self, payments: FakeUpstream, tenant_id: str | None) -> None:
        headers = {"Content-Type": "application/json"}
        if tenant_id is not None:
            headers["X-Checkout-Tenant"] = tenant_id
        payments.reply(
            "GET", "/v1/checkout/tok_0123456789abcdef", Reply(body=json.dumps(VIEW).encode(), headers=headers)
        )

    async def test_the_view_carries_the_tenants_origins_and_not_its_id(
        self, gateway: Gateway, payments: FakeUpstream
    ) -> None:
        tenant = await (await _tenant(gateway, allowed_origins=["https://shop.example"])).json()
        self._view(payments, tenant["id"])
        resp = await gateway.client.get("/v1/checkout/tok_0123456789abcdef")
        assert resp.status == 200
        assert "X-Checkout-Tenant" not in resp.headers
        assert await resp.json() == {**VIEW, "allowed_origins": ["https://shop.example"]}
        assert tenant["id"] not in await resp.text()

    async def test_an_edit_shows_on_the_next_view(self, gateway: Gateway, payments: FakeUpstream) -> None:
        tenant = await (await _tenant(gateway, allowed_origins=["https://shop.example"])).json()
        self._view(payments, tenant["id"])
        assert (await (await gateway.client.get("/v1/checkout/tok_0123456789abcdef")).json())["allowed_origins"]
        await gateway.client.patch(
            f"/admin/tenants/{tenant['id']}", json={"allowed_origins": []}, headers=admin_headers()
        )
        assert (await (await gateway.client.get("/v1/checkout/tok_0123456789abcdef")).json())["allowed_origins"] == []

    async def test_unknown_tenant_gets_none(self, gateway: Gateway, payments: FakeUpstream) -> None:
        self._view(payments, "ten_00000000000000000000000000")
        assert (await (await gateway.client.get("/v1/checkout/tok_0123456789abcdef")).json())["allowed_origins"] == []

    async def test_errors_and_pay_pass_through_unchanged(self, gateway: Gateway, payments: FakeUpstream) -> None:
        problem_body = b'{"type": "about:blank", "status": 404, "code": "not_found", "title": "Not Found"}'
        payments.reply(
            "GET",
            "/v1/checkout/tok_0123456789abcdef",
            Reply(404, problem_body, {"Content-Type": "application/problem+json", "X-Checkout-Tenant": "ten_x"}),
        )
        resp = await gateway.client.get("/v1/checkout/tok_0123456789abcdef")
        assert resp.status == 404
        assert await resp.read() == problem_body
        assert "X-Checkout-Tenant" not in resp.headers
        resp = await gateway.client.post("/v1/checkout/tok_0123456789abcdef/pay", json={"provider": "sandbox"})
        assert resp.status == 200
        assert payments.last.path_qs == "/v1/checkout/tok_0123456789abcdef/pay"

    async def test_a_view_that_is_not_json_passes_through(self, gateway: Gateway, payments: FakeUpstream) -> None:
        tenant = await gateway.create_tenant()
        headers = {"Content-Type": "application/json", "X-Checkout-Tenant": tenant["id"]}
        payments.reply("GET", "/v1/checkout/tok_0123456789abcdef", Reply(body=b"not json", headers=headers))
        resp = await gateway.client.get("/v1/checkout/tok_0123456789abcdef")
        assert resp.status == 200
        assert await resp.read() == b"not json"
        assert "X-Checkout-Tenant" not in resp.headers
