"""``/v1/webhook-endpoints``: validation, secrets (shown once, encrypted at rest), tenancy."""

from __future__ import annotations

import pytest
from sqlalchemy import text


class TestCreateEndpoint:
    async def test_returns_secret_once_and_encrypts_it_at_rest(self, client, auth, clean_db) -> None:
        response = await client.post(
            "/v1/webhook-endpoints",
            json={"url": "https://shop.example/hook", "events": ["payment.succeeded"], "description": "shop"},
            headers=auth(),
        )
        assert response.status == 201
        body = await response.json()
        assert body["secret"].startswith("whsec_")
        assert body["events"] == ["payment.succeeded"]
        assert body["enabled"] is True
        assert body["id"].startswith("we_")
        fetched = await (await client.get(f"/v1/webhook-endpoints/{body['id']}", headers=auth())).json()
        assert "secret" not in fetched
        listed = await (await client.get("/v1/webhook-endpoints", headers=auth())).json()
        assert [e["id"] for e in listed["data"]] == [body["id"]]
        assert "secret" not in listed["data"][0]
        async with clean_db.connect() as conn:
            stored = (await conn.execute(text("SELECT secret_encrypted FROM webhook_endpoints"))).scalar_one()
        assert body["secret"] not in stored
        assert body["secret"].removeprefix("whsec_") not in stored

    async def test_defaults_to_every_event(self, client, auth) -> None:
        response = await client.post("/v1/webhook-endpoints", json={"url": "https://shop.example/h"}, headers=auth())
        assert (await response.json())["events"] == ["*"]

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"url": "ftp://shop.example/h"}, "url"),
            ({"url": "not a url"}, "url"),
            ({"url": "https://"}, "url"),
            ({"url": "https://user:pw@shop.example/h"}, "url"),
            ({"url": "https://shop.example/h", "events": ["payment.exploded"]}, "events"),
            ({"url": "https://shop.example/h", "events": []}, "events"),
            ({"url": "https://shop.example/h", "events": ["*", "payment.created"]}, "events"),
            ({"url": "https://shop.example/h", "events": "payment.created"}, "events"),
            ({"url": "https://shop.example/h", "events": ["webhook.test"]}, "events"),
            ({"url": "https://shop.example/h", "enabled": "yes"}, "enabled"),
            ({"url": "https://shop.example/h", "colour": "red"}, "colour"),
            ({"url": 42}, "url"),
            ({}, "url"),
        ],
    )
    async def test_invalid_input_is_422(self, client, auth, body, field) -> None:
        response = await client.post("/v1/webhook-endpoints", json=body, headers=auth())
        assert response.status == 422, await response.text()
        problem = await response.json()
        assert response.content_type == "application/problem+json"
        assert problem["code"] == "validation_error"
        assert field in [e["field"] for e in problem["errors"]]

    async def test_http_refused_unless_allowed(self, start_app, auth) -> None:
        client = await start_app(allow_http=False)
        response = await client.post("/v1/webhook-endpoints", json={"url": "http://shop.example/h"}, headers=auth())
        assert response.status == 422
        assert (await response.json())["errors"][0]["message"] == "must use https"

    @pytest.mark.parametrize(
        "url", ["https://127.0.0.1/h", "https://[::1]/h", "https://169.254.169.254/latest", "https://10.0.0.1/h"]
    )
    async def test_blocked_ip_literals_are_refused_at_creation(self, start_app, auth, url) -> None:
        client = await start_app(allow_loopback=False)
        response = await client.post("/v1/webhook-endpoints", json={"url": url}, headers=auth())
        assert response.status == 422
        assert "points to a" in (await response.json())["detail"]

    async def test_not_json_is_415_and_garbage_is_400(self, client, auth) -> None:
        response = await client.post("/v1/webhook-endpoints", data="x", headers=auth())
        assert response.status == 415
        response = await client.post(
            "/v1/webhook-endpoints", data="{", headers={**auth(), "Content-Type": "application/json"}
        )
        assert response.status == 400

    async def test_without_internal_token_is_401(self, client) -> None:
        response = await client.get("/v1/webhook-endpoints")
        assert response.status == 401


class TestUpdateAndDelete:
    async def test_patch_changes_only_given_fields(self, client, auth, create_endpoint) -> None:
        endpoint = await create_endpoint(description="first", events=["payment.created"])
        response = await client.patch(
            f"/v1/webhook-endpoints/{endpoint['id']}", json={"events": ["*"], "enabled": False}, headers=auth()
        )
        assert response.status == 200
        body = await response.json()
        assert body["events"] == ["*"]
        assert body["enabled"] is False
        assert body["disabled_reason"] == "manual"
        assert body["description"] == "first"
        assert body["url"] == endpoint["url"]
        response = await client.patch(
            f"/v1/webhook-endpoints/{endpoint['id']}", json={"enabled": True, "description": None}, headers=auth()
        )
        body = await response.json()
        assert body["enabled"] is True
        assert body["disabled_reason"] is None
        assert body["description"] is None

    async def test_patch_validates(self, client, auth, create_endpoint) -> None:
        endpoint = await create_endpoint()
        for body in ({"events": ["nope"]}, {"url": "gopher://x"}, {"enabled": None}, {"url": None}, {"x": 1}):
            response = await client.patch(f"/v1/webhook-endpoints/{endpoint['id']}", json=body, headers=auth())
            assert response.status == 422

    async def test_delete_hides_the_endpoint(self, client, auth, create_endpoint) -> None:
        endpoint = await create_endpoint()
        response = await client.delete(f"/v1/webhook-endpoints/{endpoint['id']}", headers=auth())
        assert response.status == 200
        assert (await client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=auth())).status == 404
        assert (await client.delete(f"/v1/webhook-endpoints/{endpoint['id']}", headers=auth())).status == 404

    async def test_rotate_returns_a_new_secret(self, client, auth, create_endpoint) -> None:
        endpoint = await create_endpoint()
        response = await client.post(f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret", headers=auth())
        assert response.status == 200
        rotated = await response.json()
        assert rotated["secret"].startswith("whsec_")
        assert rotated["secret"] != endpoint["secret"]


class TestPagination:
    async def test_endpoints_and_deliveries_page_newest_first(self, client, auth, create_endpoint) -> None:
        created = [await create_endpoint() for _ in range(3)]
        first = await (await client.get("/v1/webhook-endpoints?limit=2", headers=auth())).json()
        assert [e["id"] for e in first["data"]] == [created[2]["id"], created[1]["id"]]
        assert first["has_more"] is True
        rest = await (await client.get("/v1/webhook-endpoints?limit=2&offset=2", headers=auth())).json()
        assert [e["id"] for e in rest["data"]] == [created[0]["id"]]
        assert rest["has_more"] is False
        for endpoint in created:
            await client.post(f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=auth())
        page = await (
            await client.get(
                "/v1/webhook-deliveries",
                params={"endpoint_id": created[0]["id"], "event_type": "webhook.test", "limit": "5"},
                headers=auth(),
            )
        ).json()
        assert [d["endpoint_id"] for d in page["data"]] == [created[0]["id"]]


class TestTenantIsolation:
    async def test_other_tenant_gets_404_everywhere(self, client, auth, create_endpoint) -> None:
        endpoint = await create_endpoint(tenant="ten_a")
        test = await client.post(f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=auth("ten_a"))
        delivery = await test.json()
        other = auth("ten_b")
        base = f"/v1/webhook-endpoints/{endpoint['id']}"
        calls = [
            client.get(base, headers=other),
            client.patch(base, json={"enabled": False}, headers=other),
            client.delete(base, headers=other),
            client.post(f"{base}/rotate-secret", headers=other),
            client.post(f"{base}/test", headers=other),
            client.post(f"{base}/replay", json={"since": "2020-01-01T00:00:00Z"}, headers=other),
            client.get(f"/v1/webhook-deliveries/{delivery['id']}", headers=other),
            client.post(f"/v1/webhook-deliveries/{delivery['id']}/retry", headers=other),
        ]
        for call in calls:
            response = await call
            assert response.status == 404, await response.text()
            assert (await response.json())["code"] == "not_found"
        listed = await (await client.get("/v1/webhook-endpoints", headers=other)).json()
        assert listed["data"] == []
        deliveries = await (await client.get("/v1/webhook-deliveries", headers=other)).json()
        assert deliveries["data"] == []

    async def test_malformed_ids_are_404(self, client, auth) -> None:
        for path in ("/v1/webhook-endpoints/../x", "/v1/webhook-endpoints/WE_1", "/v1/webhook-deliveries/%00"):
            response = await client.get(path, headers=auth())
            assert response.status == 404


class TestDeliveryQueries:
    @pytest.mark.parametrize(
        "query", [{"limit": "0"}, {"limit": "x"}, {"offset": "-1"}, {"status": "weird"}, {"event_type": "nope"}]
    )
    async def test_bad_query_is_422(self, client, auth, query) -> None:
        response = await client.get("/v1/webhook-deliveries", params=query, headers=auth())
        assert response.status == 422

    @pytest.mark.parametrize(
        "body",
        [
            {},
            {"since": "yesterday"},
            {"since": 1700000000},
            {"since": "2026-01-01T00:00:00"},
            {"since": "2026-01-01T00:00:00Z", "status": "some"},
        ],
    )
    async def test_bad_replay_is_422(self, client, auth, create_endpoint, body) -> None:
        endpoint = await create_endpoint()
        response = await client.post(f"/v1/webhook-endpoints/{endpoint['id']}/replay", json=body, headers=auth())
        assert response.status == 422, await response.text()
