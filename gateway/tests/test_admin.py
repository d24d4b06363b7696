from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from gateway.db.models import Tenant
from gateway.settings import Settings
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from .support import ADMIN_TOKEN, Gateway, admin_headers, bearer, problem

pytestmark = pytest.mark.postgres


async def _stored(engine: AsyncEngine, tenant_id: str) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(select(Tenant.__table__).where(Tenant.id == tenant_id))).one()


class TestAdminAuthentication:
    @pytest.mark.parametrize(
        "headers",
        [
            {},
            {"Authorization": "Bearer wrong-token"},
            {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
            {"Authorization": f"Basic {ADMIN_TOKEN}"},
            {"Authorization": "Bearer"},
            {"Authorization": "Bearer "},
            {"Authorization": ADMIN_TOKEN},
        ],
    )
    async def test_missing_or_wrong_token_returns_401(self, gateway: Gateway, headers: dict[str, str]) -> None:
        for method, path in [
            ("GET", "/admin/tenants"),
            ("POST", "/admin/tenants"),
            ("GET", "/admin/tenants/ten_x"),
            ("POST", "/admin/tenants/ten_x/rotate-secret"),
        ]:
            resp = await gateway.client.request(method, path, headers=headers, json={"app_name": "abc"})
            await problem(resp, 401, "unauthorized")
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")

    async def test_tenant_token_returns_403(self, gateway: Gateway) -> None:
        _, token = await gateway.tenant_with_token()
        resp = await gateway.client.get("/admin/tenants", headers=bearer(token))
        await problem(resp, 403, "forbidden")

    async def test_admin_api_disabled_without_a_configured_token(
        self, make_gateway: Callable[..., Awaitable[Gateway]]
    ) -> None:
        gateway = await make_gateway(admin_token=None)
        resp = await gateway.client.get("/admin/tenants", headers={"Authorization": "Bearer "})
        await problem(resp, 401, "unauthorized")
        resp = await gateway.client.get("/admin/tenants", headers=admin_headers())
        await problem(resp, 401, "unauthorized")


class TestCreateTenant:
    async def test_valid_returns_201_with_secret_once(self, gateway: Gateway, engine: AsyncEngine) -> None:
        resp = await gateway.client.post(
            "/admin/tenants", json={"app_name": "shop-1", "display_name": "  Shop One "}, headers=admin_headers()
        )
        assert resp.status == 201
        assert resp.headers["Cache-Control"] == "no-store"
        body = await resp.json()
        assert body["id"].startswith("ten_")
        assert body["app_name"] == "shop-1"
        assert body["display_name"] == "Shop One"
        assert body["secret"].startswith("sk_")
        assert len(body["secret"]) >= 40
        assert body["created_at"].endswith("Z")

        fetched = await (await gateway.client.get(f"/admin/tenants/{body['id']}", headers=admin_headers())).json()
        assert "secret" not in fetched
        assert {k: v for k, v in body.items() if k != "secret"} == fetched

        row = await _stored(engine, body["id"])
        assert row.secret_hash.startswith("$argon2id$")
        assert body["secret"] not in row.secret_hash
        assert row.previous_secret_hash is None

    async def test_taken_app_name_returns_409(self, gateway: Gateway) -> None:
        await gateway.create_tenant("shop-1")
        resp = await gateway.client.post(
            "/admin/tenants", json={"app_name": "shop-1", "display_name": "Other"}, headers=admin_headers()
        )
        await problem(resp, 409, "app_name_taken")

    async def test_concurrent_creates_of_one_name_make_one_tenant(self, gateway: Gateway) -> None:
        async def create() -> int:
            resp = await gateway.client.post(
                "/admin/tenants", json={"app_name": "race", "display_name": "R"}, headers=admin_headers()
            )
            return resp.status

        statuses = await asyncio.gather(*(create() for _ in range(5)))
        assert sorted(statuses) == [201, 409, 409, 409, 409]

    @pytest.mark.parametrize(
        ("body", "fields"),
        [
            ({"app_name": "ab", "display_name": "x"}, ["app_name"]),
            ({"app_name": "a" * 65, "display_name": "x"}, ["app_name"]),
            ({"app_name": "Shop", "display_name": "x"}, ["app_name"]),
            ({"app_name": "shop_1", "display_name": "x"}, ["app_name"]),
            ({"app_name": "shop 1", "display_name": "x"}, ["app_name"]),
            ({"app_name": "shop\n", "display_name": "x"}, ["app_name"]),
            ({"app_name": "шоп-1", "display_name": "x"}, ["app_name"]),
            ({"app_name": 123, "display_name": "x"}, ["app_name"]),
            ({"app_name": None, "display_name": "x"}, ["app_name"]),
            ({"display_name": "x"}, ["app_name"]),
            ({"app_name": "shop-1"}, ["display_name"]),
            ({"app_name": "shop-1", "display_name": ""}, ["display_name"]),
            ({"app_name": "shop-1", "display_name": "   "}, ["display_name"]),
            ({"app_name": "shop-1", "display_name": "x" * 201}, ["display_name"]),
            ({"app_name": "shop-1", "display_name": ["x"]}, ["display_name"]),
            ({}, ["app_name", "display_name"]),
        ],
    )
    async def test_invalid_fields_return_422(self, gateway: Gateway, body: dict[str, Any], fields: list[str]) -> None:
        resp = await gateway.client.post("/admin/tenants", json=body, headers=admin_headers())
        problem_body = await problem(resp, 422, "validation_error")
        assert [e["field"] for e in problem_body["errors"]] == fields

    async def test_boundary_names_are_accepted(self, gateway: Gateway) -> None:
        await gateway.create_tenant("abc", "x")
        await gateway.create_tenant("a" * 64, "y" * 200)
        await gateway.create_tenant("0-9-z", "Zed")

    async def test_non_json_body_returns_415_or_400(self, gateway: Gateway) -> None:
        resp = await gateway.client.post("/admin/tenants", data="app_name=x", headers=admin_headers())
        await problem(resp, 415, "unsupported_media_type")
        resp = await gateway.client.post(
            "/admin/tenants", data="{", headers={**admin_headers(), "Content-Type": "application/json"}
        )
        await problem(resp, 400, "invalid_json")
        resp = await gateway.client.post("/admin/tenants", json=["x"], headers=admin_headers())
        await problem(resp, 400, "invalid_json")


class TestListAndGetTenants:
    async def test_list_is_paginated_newest_first(self, gateway: Gateway) -> None:
        created = [await gateway.create_tenant(f"shop-{i}") for i in range(3)]
        resp = await gateway.client.get("/admin/tenants?limit=2", headers=admin_headers())
        assert resp.status == 200
        page = await resp.json()
        assert [t["app_name"] for t in page["data"]] == ["shop-2", "shop-1"]
        assert (page["limit"], page["offset"], page["has_more"]) == (2, 0, True)
        assert all("secret" not in t for t in page["data"])

        page = await (await gateway.client.get("/admin/tenants?limit=2&offset=2", headers=admin_headers())).json()
        assert [t["id"] for t in page["data"]] == [created[0]["id"]]
        assert page["has_more"] is False

        page = await (await gateway.client.get("/admin/tenants", headers=admin_headers())).json()
        assert (page["limit"], page["offset"], len(page["data"])) == (20, 0, 3)

    @pytest.mark.parametrize(
        "query", ["limit=0", "limit=101", "limit=abc", "offset=-1", "limit=1.5", "offset=99999999999999999999"]
    )
    async def test_bad_pagination_returns_422(self, gateway: Gateway, query: str) -> None:
        resp = await gateway.client.get(f"/admin/tenants?{query}", headers=admin_headers())
        await problem(resp, 422, "validation_error")

    async def test_unknown_tenant_returns_404(self, gateway: Gateway) -> None:
        for path in ["/admin/tenants/ten_missing", "/admin/tenants/%00%ff"]:
            resp = await gateway.client.get(path, headers=admin_headers())
            await problem(resp, 404, "not_found")
        resp = await gateway.client.post("/admin/tenants/ten_missing/rotate-secret", headers=admin_headers())
        await problem(resp, 404, "not_found")


class TestRotateSecret:
    async def _rotate(self, gateway: Gateway, tenant_id: str) -> dict[str, Any]:
        resp = await gateway.client.post(f"/admin/tenants/{tenant_id}/rotate-secret", headers=admin_headers())
        assert resp.status == 200, await resp.text()
        assert resp.headers["Cache-Control"] == "no-store"
        return dict(await resp.json())

    async def _token_status(self, gateway: Gateway, app_name: str, secret: str) -> int:
        resp = await gateway.client.post("/v1/auth/token", json={"app_name": app_name, "secret": secret})
        return resp.status

    async def test_old_secret_works_within_grace(self, gateway: Gateway, engine: AsyncEngine) -> None:
        tenant = await gateway.create_tenant()
        rotated = await self._rotate(gateway, tenant["id"])
        assert rotated["secret"] != tenant["secret"]
        assert rotated["id"] == tenant["id"]
        expires = datetime.fromisoformat(rotated["previous_secret_expires_at"])
        assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(hours=24)

        assert await self._token_status(gateway, "shop-1", tenant["secret"]) == 200
        assert await self._token_status(gateway, "shop-1", rotated["secret"]) == 200

        row = await _stored(engine, tenant["id"])
        assert row.secret_hash.startswith("$argon2id$")
        assert row.previous_secret_hash.startswith("$argon2id$")

    async def test_old_secret_fails_after_grace(self, gateway: Gateway, engine: AsyncEngine) -> None:
        tenant = await gateway.create_tenant()
        rotated = await self._rotate(gateway, tenant["id"])
        async with engine.begin() as conn:
            await conn.execute(
                update(Tenant.__table__)
                .where(Tenant.id == tenant["id"])
                .values(previous_secret_expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        assert await self._token_status(gateway, "shop-1", tenant["secret"]) == 401
        assert await self._token_status(gateway, "shop-1", rotated["secret"]) == 200

    async def test_grace_period_is_configurable(self, make_gateway: Callable[..., Awaitable[Gateway]]) -> None:
        gateway = await make_gateway(secret_grace_period=0)
        tenant = await gateway.create_tenant()
        rotated = await self._rotate(gateway, tenant["id"])
        assert await self._token_status(gateway, "shop-1", tenant["secret"]) == 401
        assert await self._token_status(gateway, "shop-1", rotated["secret"]) == 200

    async def test_second_rotation_retires_the_first_secret(self, gateway: Gateway) -> None:
        tenant = await gateway.create_tenant()
        first = await self._rotate(gateway, tenant["id"])
        second = await self._rotate(gateway, tenant["id"])
        assert await self._token_status(gateway, "shop-1", tenant["secret"]) == 401
        assert await self._token_status(gateway, "shop-1", first["secret"]) == 200
        assert await self._token_status(gateway, "shop-1", second["secret"]) == 200


class TestHashCost:
    """The argon2 cost of new hashes is the settings' (OWASP's profile by default); a secret hashed
    with an earlier cost keeps verifying, since each hash records its own parameters."""

    async def test_a_secret_hashed_with_the_former_profile_still_verifies_and_a_rotation_uses_the_new_one(
        self, make_gateway: Callable[..., Awaitable[Gateway]], engine: AsyncEngine
    ) -> None:
        # RFC 9106's 64 MiB, 4-lane profile: the default before 2026-12-06.
        former = await make_gateway(argon2_time_cost=3, argon2_memory_kib=64 * 1024, argon2_parallelism=4)
        tenant = await former.create_tenant()
        assert (await _stored(engine, tenant["id"])).secret_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$")

        defaults = Settings.model_fields
        today = await make_gateway(
            argon2_time_cost=defaults["argon2_time_cost"].default,
            argon2_memory_kib=defaults["argon2_memory_kib"].default,
            argon2_parallelism=defaults["argon2_parallelism"].default,
        )
        assert await today.token("shop-1", tenant["secret"])
        resp = await today.client.post(f"/admin/tenants/{tenant['id']}/rotate-secret", headers=admin_headers())
        assert resp.status == 200
        rotated = await resp.json()
        row = await _stored(engine, tenant["id"])
        assert row.secret_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
        assert row.previous_secret_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
        assert await today.token("shop-1", rotated["secret"])
        assert await today.token("shop-1", tenant["secret"])  # the previous one, in its grace period
