"""Malformed requests through the gateway: the documented 4xx (never a 500), and nothing written."""

import json

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

GOOD = {"amount": 5000, "currency": "USD", "order_id": "o-1"}

CASES = [
    # (label, raw body, extra headers, expected status, expected code or None)
    ("not json", b"{nope", {}, 400, "invalid_json"),
    ("json array", b"[1,2]", {}, 400, "invalid_json"),
    ("json string", b'"hello"', {}, 400, "invalid_json"),
    ("empty body", b"", {}, 400, "invalid_json"),
    ("deep nesting", b"[" * 50_000, {}, 400, "invalid_json"),
    ("float amount", json.dumps({**GOOD, "amount": 50.5}).encode(), {}, 422, "validation_error"),
    ("integral float", json.dumps({**GOOD, "amount": 5000.0}).encode(), {}, 422, "validation_error"),
    ("string amount", json.dumps({**GOOD, "amount": "5000"}).encode(), {}, 422, "validation_error"),
    ("negative amount", json.dumps({**GOOD, "amount": -5000}).encode(), {}, 422, "validation_error"),
    ("zero amount", json.dumps({**GOOD, "amount": 0}).encode(), {}, 422, "validation_error"),
    ("huge amount", json.dumps({**GOOD, "amount": 10**40}).encode(), {}, 422, "validation_error"),
    ("below minimum", json.dumps({**GOOD, "amount": 49}).encode(), {}, 422, "validation_error"),
    ("unknown currency", json.dumps({**GOOD, "currency": "XXX"}).encode(), {}, 422, "validation_error"),
    ("lower-case currency", json.dumps({**GOOD, "currency": "usd"}).encode(), {}, 422, "validation_error"),
    ("missing order_id", json.dumps({"amount": 5000, "currency": "USD"}).encode(), {}, 422, "validation_error"),
    ("NUL in order_id", json.dumps({**GOOD, "order_id": "a\u0000b"}).encode(), {}, 422, "validation_error"),
    ("bool amount", json.dumps({**GOOD, "amount": True}).encode(), {}, 422, "validation_error"),
    ("unknown field", json.dumps({**GOOD, "amout": 1}).encode(), {}, 422, "validation_error"),
    ("metadata not strings", json.dumps({**GOOD, "metadata": {"a": {"b": 1}}}).encode(), {}, 422, "validation_error"),
    ("oversized body", json.dumps({**GOOD, "description": "x" * 70_000}).encode(), {}, 413, None),
    ("text/plain", json.dumps(GOOD).encode(), {"Content-Type": "text/plain"}, 415, None),
    ("no idempotency key", json.dumps(GOOD).encode(), {"Idempotency-Key": None}, 400, "idempotency_key_missing"),
    ("blank idempotency key", json.dumps(GOOD).encode(), {"Idempotency-Key": ""}, 400, None),
    ("long idempotency key", json.dumps(GOOD).encode(), {"Idempotency-Key": "k" * 300}, 400, None),
]


class TestBadInputThroughTheGateway:
    @pytest.mark.parametrize(("label", "raw", "extra", "status", "code"), CASES, ids=[c[0] for c in CASES])
    async def test_rejected_with_its_status_and_nothing_written(
        self, platform, new_tenant, http, label, raw, extra, status, code
    ) -> None:
        tenant = await new_tenant()
        headers = {**tenant.auth, "Content-Type": "application/json", "Idempotency-Key": f"bad-{label}"}
        for key, value in extra.items():
            if value is None:
                headers.pop(key, None)
            else:
                headers[key] = value
        async with http.post(f"{platform.gateway_url}/v1/payments", data=raw, headers=headers) as r:
            assert r.status == status, await r.text()
            assert r.content_type == "application/problem+json"
            if code is not None:
                assert (await r.json())["code"] == code
        async with http.get(f"{platform.gateway_url}/v1/payments", headers=tenant.auth) as r:
            assert (await r.json())["data"] == []
        assert await tenant.events() == []

    async def test_sql_and_html_in_strings_are_stored_verbatim(self, platform, new_tenant) -> None:
        tenant = await new_tenant()
        nasty = "'; DROP TABLE payments; -- <script>alert(1)</script>"
        payment = await tenant.create_payment("k", order_id=nasty, description=nasty, metadata={"x": nasty})
        again = await tenant.payment(payment["id"])
        assert again["order_id"] == nasty and again["description"] == nasty and again["metadata"] == {"x": nasty}

    @pytest.mark.parametrize(
        "authorization",
        ["", "Bearer", "Bearer not.a.jwt", "Basic dXNlcjpwYXNz", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."],
    )
    async def test_bad_credentials_are_401(self, platform, http, authorization) -> None:
        async with http.get(
            f"{platform.gateway_url}/v1/payments", headers={"Authorization": authorization} if authorization else {}
        ) as r:
            assert r.status == 401
            assert (await r.json())["code"]
