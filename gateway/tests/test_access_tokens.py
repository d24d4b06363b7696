from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import jwt
import pytest
from gateway.app import create_app

from .support import JWT_AUDIENCE, JWT_ISSUER, JWT_KEYS, Gateway, closed_port, problem

pytestmark = pytest.mark.postgres


class TestIssueToken:
    async def test_valid_pair_returns_a_signed_token(self, gateway: Gateway) -> None:
        tenant = await gateway.create_tenant()
        resp = await gateway.client.post("/v1/auth/token", json={"app_name": "shop-1", "secret": tenant["secret"]})
        assert resp.status == 200
        assert resp.headers["Cache-Control"] == "no-store"
        body = await resp.json()
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 86400

        token = body["access_token"]
        assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT", "kid": "k2"}
        claims = jwt.decode(token, JWT_KEYS["k2"], algorithms=["HS256"], audience=JWT_AUDIENCE, issuer=JWT_ISSUER)
        assert claims["sub"] == claims["tenant_id"] == tenant["id"]
        assert claims["purpose"] == "tenant_access"
        assert claims["exp"] - claims["iat"] == 86400
        assert abs(claims["iat"] - time.time()) < 5

    async def test_ttl_is_configurable(self, make_gateway: Callable[..., Awaitable[Gateway]]) -> None:
        gateway = await make_gateway(token_ttl=60)
        tenant = await gateway.create_tenant()
        resp = await gateway.client.post("/v1/auth/token", json={"app_name": "shop-1", "secret": tenant["secret"]})
        assert (await resp.json())["expires_in"] == 60

    async def test_unknown_app_and_wrong_secret_get_the_same_401(self, gateway: Gateway) -> None:
        tenant = await gateway.create_tenant()
        attempts = [
            {"app_name": "shop-1", "secret": tenant["secret"] + "x"},
            {"app_name": "shop-1", "secret": "sk_wrong"},
            {"app_name": "no-such-app", "secret": tenant["secret"]},
            {"app_name": "NOT A VALID NAME", "secret": tenant["secret"]},
            {"app_name": "shop-1", "secret": ""},
        ]
        answers = []
        for body in attempts:
            resp = await gateway.client.post("/v1/auth/token", json=body)
            problem_body = await problem(resp, 401, "invalid_credentials")
            answers.append({k: v for k, v in problem_body.items() if k != "request_id"})
        assert all(answer == answers[0] for answer in answers)

    async def test_unknown_app_costs_a_hash_check_like_a_wrong_secret(
        self, make_gateway: Callable[..., Awaitable[Gateway]]
    ) -> None:
        # Real argon2 cost here, so the hash check dominates both timings.
        gateway = await make_gateway(argon2_time_cost=2, argon2_memory_kib=16 * 1024, argon2_parallelism=1)
        await gateway.create_tenant()

        async def timed(body: dict[str, Any]) -> float:
            started = time.perf_counter()
            resp = await gateway.client.post("/v1/auth/token", json=body)
            assert resp.status == 401
            return time.perf_counter() - started

        wrong_secret = min([await timed({"app_name": "shop-1", "secret": "sk_x"}) for _ in range(3)])
        unknown_app = min([await timed({"app_name": "nobody", "secret": "sk_x"}) for _ in range(3)])
        assert unknown_app > wrong_secret * 0.5
        assert wrong_secret > unknown_app * 0.5

    @pytest.mark.parametrize(
        ("body", "fields"),
        [
            ({"app_name": "shop-1"}, ["secret"]),
            ({"secret": "x"}, ["app_name"]),
            ({"app_name": 1, "secret": "x"}, ["app_name"]),
            ({"app_name": "shop-1", "secret": ["x"]}, ["secret"]),
            ({}, ["app_name", "secret"]),
        ],
    )
    async def test_missing_or_mistyped_fields_return_422(
        self, gateway: Gateway, body: dict[str, Any], fields: list[str]
    ) -> None:
        resp = await gateway.client.post("/v1/auth/token", json=body)
        problem_body = await problem(resp, 422, "validation_error")
        assert [e["field"] for e in problem_body["errors"]] == fields

    @pytest.mark.parametrize(
        ("data", "content_type", "status", "code"),
        [
            ("app_name=shop-1&secret=x", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
            ('{"app_name": "shop-1"}', "text/plain", 415, "unsupported_media_type"),
            ("", None, 415, "unsupported_media_type"),
            ("{not json", "application/json", 400, "invalid_json"),
            ("", "application/json", 400, "invalid_json"),
            ("[1, 2]", "application/json", 400, "invalid_json"),
            ('"string"', "application/json", 400, "invalid_json"),
            ("null", "application/json", 400, "invalid_json"),
            (b"\xff\xfe", "application/json", 400, "invalid_json"),
        ],
    )
    async def test_non_json_body_returns_415_or_400(
        self, gateway: Gateway, data: str | bytes, content_type: str | None, status: int, code: str
    ) -> None:
        headers = {"Content-Type": content_type} if content_type else {}
        resp = await gateway.client.post("/v1/auth/token", data=data, headers=headers)
        await problem(resp, status, code)

    async def test_wrong_method_returns_405(self, gateway: Gateway) -> None:
        resp = await gateway.client.get("/v1/auth/token")
        await problem(resp, 405, "method_not_allowed")


class TestDatabaseDown:
    async def test_token_endpoint_returns_503_not_500(
        self, make_settings: Callable[..., Any], aiohttp_client: Callable[..., Awaitable[Any]]
    ) -> None:
        settings = make_settings(database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/gateway")
        client = await aiohttp_client(create_app(settings))
        resp = await client.post("/v1/auth/token", json={"app_name": "shop-1", "secret": "sk_x"})
        body = await problem(resp, 503, "database_unavailable")
        assert resp.headers["Retry-After"].isdigit()
        assert "127.0.0.1" not in body["detail"]
