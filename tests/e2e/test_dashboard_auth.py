"""The dashboard's sign-in and sessions, against the embedded platform's real gateway, with checkout-web
apps of the test's own (their settings, one shared database: two of them are two replicas): cookie
flags, what the database keeps, CSRF refusals that change nothing, the sign-in throttle, idle and
absolute expiry, sign-out, a slow or unreachable gateway."""

from __future__ import annotations

import asyncio
import hashlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from billing_runtime.db import create_engine
from billing_runtime.testing import create_test_database, drop_test_database
from checkout_web.app import create_app
from checkout_web.settings import Settings
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from .dashboard_support import Browser, Tenant, csrf_of, new_tenant_with_secret

pytestmark = [pytest.mark.e2e]

CHECKOUT_ROOT = Path(__file__).resolve().parents[2] / "checkout-web"
KEYS = "c2Vzc2lvbi1rZXktZm9yLWRhc2hib2FyZC10ZXN0cyE="


@pytest.fixture(scope="module")
async def database_url() -> AsyncIterator[str]:
    url = await create_test_database("checkout_dashboard", CHECKOUT_ROOT)
    yield url
    await drop_test_database(url)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=2)
    async with engine.begin() as conn:
        await conn.execute(text("TRUNCATE dashboard_sessions, dashboard_login_attempts"))
    yield engine
    await engine.dispose()


@pytest.fixture
def start(
    embedded_platform: Any, database_url: str, db: AsyncEngine, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> Callable[..., Awaitable[str]]:
    """A checkout-web of the test's own on loopback; its base URL."""

    async def run(**overrides: Any) -> str:
        values: dict[str, Any] = {
            "gateway_url": embedded_platform.gateway_url,
            "database_url": database_url,
            "database_pool_size": 2,
            "session_keys": KEYS,
            "trusted_proxies": "127.0.0.1",
            **overrides,
        }
        server = await aiohttp_server(create_app(Settings(**values)), host="127.0.0.1")
        return str(server.make_url("")).rstrip("/")

    return run


@pytest.fixture
async def tenant(embedded_platform: Any, http: aiohttp.ClientSession) -> Tenant:
    return await new_tenant_with_secret(http, embedded_platform.gateway_url, embedded_platform.admin_token)


@pytest.fixture
async def browsers() -> AsyncIterator[Callable[[str], Browser]]:
    made: list[Browser] = []

    def make(base: str) -> Browser:
        browser = Browser(base)
        made.append(browser)
        return browser

    yield make
    for browser in made:
        await browser.close()


async def _rows(db: AsyncEngine) -> list[Any]:
    async with db.connect() as conn:
        return list((await conn.execute(text("SELECT * FROM dashboard_sessions"))).all())


def _set_cookie(response: aiohttp.ClientResponse, name: str) -> str:
    [header] = [h for h in response.headers.getall("Set-Cookie") if h.startswith(f"{name}=")]
    return header


class TestSignIn:
    async def test_session_cookie_is_opaque_and_the_database_keeps_only_its_hash(
        self, start: Any, browsers: Any, tenant: Tenant, db: AsyncEngine, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level("DEBUG")
        browser = browsers(await start())
        status, _, response = await browser.sign_in(tenant.app_name, tenant.secret)
        assert status == 303
        cookie = _set_cookie(response, "dashboard_session")
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/dashboard" in cookie
        assert "Secure" not in cookie  # plain http, no proxy saying otherwise
        token = browser.cookie("dashboard_session")
        assert token and tenant.token.split(".")[0] not in cookie
        [row] = await _rows(db)
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert row.app_name == tenant.app_name
        assert "eyJ" not in row.access_token  # the JWT is encrypted at rest
        assert row.expires_at > row.created_at
        # Never past the access token (24 h) nor the absolute limit (12 h by default).
        assert (row.expires_at - row.created_at).total_seconds() <= 12 * 3600
        status, page, _ = await browser.get("/dashboard/payments")
        assert status == 200 and tenant.app_name in page
        # Neither the secret nor any access token (a JWT starts "eyJ") reaches a log line or the page.
        assert tenant.secret not in caplog.text and "eyJ" not in caplog.text
        assert "eyJ" not in page and tenant.secret not in page

    async def test_secure_behind_a_trusted_proxy_that_says_https(
        self, start: Any, browsers: Any, tenant: Tenant
    ) -> None:
        browser = browsers(await start())
        _, page, _ = await browser.get("/dashboard/sign-in")
        status, _, response = await browser.post(
            "/dashboard/sign-in",
            {"csrf_token": csrf_of(page), "app_name": tenant.app_name, "secret": tenant.secret},
            headers={"X-Forwarded-Proto": "https"},
        )
        assert status == 303
        assert "Secure" in _set_cookie(response, "dashboard_session")

    async def test_wrong_secret_is_refused_without_a_session(
        self, start: Any, browsers: Any, tenant: Tenant, db: AsyncEngine
    ) -> None:
        browser = browsers(await start())
        status, page, _ = await browser.sign_in(tenant.app_name, "sk_wrong")
        assert status == 401
        assert "Wrong app name or secret" in page
        assert browser.cookie("dashboard_session") is None
        assert await _rows(db) == []

    async def test_sign_in_without_the_forms_token_is_refused(
        self, start: Any, browsers: Any, tenant: Tenant, db: AsyncEngine
    ) -> None:
        browser = browsers(await start())
        await browser.get("/dashboard/sign-in")
        for token in (None, "forged"):
            data = {"app_name": tenant.app_name, "secret": tenant.secret}
            if token:
                data["csrf_token"] = token
            status, page, _ = await browser.post("/dashboard/sign-in", data)
            assert status == 403
            assert "nothing was done" in page
        assert await _rows(db) == []

    async def test_a_signed_out_visitor_is_sent_to_sign_in(self, start: Any, browsers: Any) -> None:
        browser = browsers(await start())
        status, _, response = await browser.get("/dashboard/payments")
        assert status == 303
        assert response.headers["Location"] == "/dashboard/sign-in?reason=signed_out"


class TestCsrf:
    async def test_a_post_without_or_with_a_wrong_token_changes_nothing(
        self, start: Any, browsers: Any, tenant: Tenant, embedded_platform: Any, http: aiohttp.ClientSession
    ) -> None:
        browser = browsers(await start())
        await browser.sign_in(tenant.app_name, tenant.secret)
        async with http.post(
            f"{embedded_platform.gateway_url}/v1/payments",
            json={"amount": 5000, "currency": "USD", "order_id": "csrf-1"},
            headers={**tenant.auth, "Idempotency-Key": "csrf-1"},
        ) as r:
            payment = await r.json()
        for data in ({}, {"csrf_token": "wrong"}):
            status, page, response = await browser.post(f"/dashboard/payments/{payment['id']}/cancel", data)
            assert status == 403, page
            assert response.content_type == "text/html"
            status, _, _ = await browser.post(
                "/dashboard/webhooks", {**data, "url": "https://example.com/h", "all_events": "yes"}
            )
            assert status == 403
            status, _, _ = await browser.post("/dashboard/sign-out", data)
            assert status == 403
        async with http.get(f"{embedded_platform.gateway_url}/v1/payments/{payment['id']}", headers=tenant.auth) as r:
            assert (await r.json())["status"] == "CREATED"
        async with http.get(f"{embedded_platform.gateway_url}/v1/webhook-endpoints", headers=tenant.auth) as r:
            assert (await r.json())["data"] == []
        status, _, _ = await browser.get("/dashboard/payments")
        assert status == 200  # still signed in

    async def test_another_sessions_token_is_refused(self, start: Any, browsers: Any, tenant: Tenant) -> None:
        base = await start()
        mine, theirs = browsers(base), browsers(base)
        await mine.sign_in(tenant.app_name, tenant.secret)
        await theirs.sign_in(tenant.app_name, tenant.secret)
        _, their_page, _ = await theirs.get("/dashboard/payments")
        status, _, _ = await mine.post("/dashboard/sign-out", {"csrf_token": csrf_of(their_page)})
        assert status == 403


class TestThrottle:
    async def test_per_client_address(self, start: Any, browsers: Any, tenant: Tenant) -> None:
        browser = browsers(await start(login_limit_per_client=3))
        for _ in range(3):
            status, _, _ = await browser.sign_in(tenant.app_name, "sk_wrong")
            assert status == 401
        status, page, response = await browser.sign_in(tenant.app_name, tenant.secret)
        assert status == 429
        assert "Too many sign-in attempts" in page and "Try again after" in page
        assert int(response.headers["Retry-After"]) > 0
        assert browser.cookie("dashboard_session") is None

    async def test_per_app_name_across_addresses_and_replicas(self, start: Any, browsers: Any, tenant: Tenant) -> None:
        # Two replicas on one database count together; each attempt from another address.
        first, second = await start(login_limit_per_app=2), await start(login_limit_per_app=2)
        for n, base in enumerate((first, second, first)):
            browser = browsers(base)
            _, page, _ = await browser.get("/dashboard/sign-in")
            status, _, _ = await browser.post(
                "/dashboard/sign-in",
                {"csrf_token": csrf_of(page), "app_name": tenant.app_name, "secret": "sk_wrong"},
                headers={"X-Forwarded-For": f"203.0.113.{n + 1}"},
            )
            assert status == (401 if n < 2 else 429)

    async def test_one_attacker_does_not_lock_out_another_client(
        self, start: Any, browsers: Any, tenant: Tenant
    ) -> None:
        base = await start(login_limit_per_client=2, login_limit_per_app=100)
        attacker, user = browsers(base), browsers(base)
        for _ in range(5):
            _, page, _ = await attacker.get("/dashboard/sign-in")
            await attacker.post(
                "/dashboard/sign-in",
                {"csrf_token": csrf_of(page), "app_name": "victim-app", "secret": "guess"},
                headers={"X-Forwarded-For": "198.51.100.7"},
            )
        _, page, _ = await user.get("/dashboard/sign-in")
        status, _, _ = await user.post(
            "/dashboard/sign-in",
            {"csrf_token": csrf_of(page), "app_name": tenant.app_name, "secret": tenant.secret},
            headers={"X-Forwarded-For": "192.0.2.10"},
        )
        assert status == 303


class TestExpiry:
    async def _signed_in(self, start: Any, browsers: Any, tenant: Tenant) -> Browser:
        browser = browsers(await start())
        assert (await browser.sign_in(tenant.app_name, tenant.secret))[0] == 303
        return browser

    @pytest.mark.parametrize(
        "aging",
        [
            "UPDATE dashboard_sessions SET last_seen_at = now() - interval '2 hours'",  # idle
            "UPDATE dashboard_sessions SET expires_at = now() - interval '1 second'",  # absolute
        ],
    )
    async def test_an_expired_session_goes_to_sign_in_with_a_message(
        self, start: Any, browsers: Any, tenant: Tenant, db: AsyncEngine, aging: str
    ) -> None:
        browser = await self._signed_in(start, browsers, tenant)
        async with db.begin() as conn:
            await conn.execute(text(aging))
        status, _, response = await browser.get("/dashboard/payments")
        assert status == 303
        assert response.headers["Location"] == "/dashboard/sign-in?reason=expired"
        status, page, _ = await browser.get(response.headers["Location"])
        assert status == 200 and "Your session has ended" in page

    async def test_sign_out_deletes_the_session_server_side(
        self, start: Any, browsers: Any, tenant: Tenant, db: AsyncEngine
    ) -> None:
        browser = await self._signed_in(start, browsers, tenant)
        stolen = browser.cookie("dashboard_session")
        status, _, response = await browser.submit("/dashboard/payments", "/dashboard/sign-out", {})
        assert status == 303
        assert response.headers["Location"] == "/dashboard/sign-in?reason=bye"
        assert await _rows(db) == []
        # The old cookie value, replayed by someone who copied it, opens nothing.
        async with (
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other,
            other.get(
                browser.base_url + "/dashboard/payments",
                headers={"Cookie": f"dashboard_session={stolen}"},
                allow_redirects=False,
            ) as r,
        ):
            assert r.status == 303
            assert r.headers["Location"] == "/dashboard/sign-in?reason=expired"


class TestGatewayTrouble:
    async def test_a_slow_gateway_gives_a_503_page_within_the_timeout(
        self, start: Any, browsers: Any, tenant: Tenant, aiohttp_server: Any
    ) -> None:
        browser = await TestExpiry()._signed_in(start, browsers, tenant)

        async def slow(_: web.Request) -> web.Response:
            await asyncio.sleep(5)
            return web.json_response({})

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", slow)
        slow_server = await aiohttp_server(app, host="127.0.0.1")
        # Another replica (same database: the session is valid there) whose gateway is slow.
        replica = browsers(await start(gateway_url=str(slow_server.make_url("")), dashboard_timeout=0.5))
        replica.jar.update_cookies({"dashboard_session": browser.cookie("dashboard_session") or ""})
        started = asyncio.get_running_loop().time()
        status, page, response = await replica.get("/dashboard/payments")
        assert asyncio.get_running_loop().time() - started < 3
        assert status == 503
        assert "did not answer within 0.5 seconds" in page
        assert 'href="/dashboard/payments"' in page
        assert response.headers["Retry-After"]

    async def test_an_unreachable_gateway_gives_a_503_page_with_a_retry_link(
        self, start: Any, browsers: Any, tenant: Tenant
    ) -> None:
        browser = await TestExpiry()._signed_in(start, browsers, tenant)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        replica = browsers(await start(gateway_url=f"http://127.0.0.1:{port}"))
        replica.jar.update_cookies({"dashboard_session": browser.cookie("dashboard_session") or ""})
        status, page, _ = await replica.get("/dashboard/webhooks")
        assert status == 200  # the list is a part of the page: it says it could not be loaded
        assert "cannot be reached" in page
        status, page, _ = await replica.get("/dashboard/payments")
        assert status == 503
        assert "reach the platform" in page and 'href="/dashboard/payments"' in page


class TestOlderGateway:
    async def test_a_gateway_without_the_attempts_route_says_attempts_not_available(
        self,
        start: Any,
        browsers: Any,
        tenant: Tenant,
        embedded_platform: Any,
        http: aiohttp.ClientSession,
        aiohttp_server: Any,
    ) -> None:
        """A gateway of before ``GET /v1/payments/{id}/attempts``: the real one, behind a pass-through
        that answers that route as an unknown route (404 problem+json)."""

        async def passthrough(request: web.Request) -> web.StreamResponse:
            if request.path.endswith("/attempts"):
                body = {"type": "about:blank", "title": "Not Found", "status": 404, "code": "not_found"}
                return web.json_response(body, status=404, content_type="application/problem+json")
            headers = {k: v for k, v in request.headers.items() if k in ("Authorization", "Content-Type", "Accept")}
            async with http.request(
                request.method,
                embedded_platform.gateway_url + request.path_qs,
                data=await request.read(),
                headers=headers,
            ) as r:
                return web.Response(status=r.status, body=await r.read(), content_type=r.content_type)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", passthrough)
        older = await aiohttp_server(app, host="127.0.0.1")
        browser = browsers(await start(gateway_url=str(older.make_url(""))))
        assert (await browser.sign_in(tenant.app_name, tenant.secret))[0] == 303
        async with http.post(
            f"{embedded_platform.gateway_url}/v1/payments",
            json={"amount": 5000, "currency": "USD", "order_id": "older-1"},
            headers={**tenant.auth, "Idempotency-Key": "older-1"},
        ) as r:
            payment = await r.json()
        status, page, _ = await browser.get(f"/dashboard/payments/{payment['id']}")
        assert status == 200
        assert "Attempts not available" in page
        assert "payment.created" in page  # the rest of the page is all there
