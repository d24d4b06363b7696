"""A browser-like client of the tenant dashboard (cookies, forms with their CSRF token) and a tenant
whose secret the test keeps, for the dashboard's e2e tests."""

from __future__ import annotations

import html
import re
import secrets
from dataclasses import dataclass
from typing import Any

import aiohttp

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(page: str) -> str:
    found = CSRF.search(page)
    assert found, "no CSRF token on the page"
    return html.unescape(found.group(1))


def hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"no {name} on the page"
    return html.unescape(found.group(1))


@dataclass
class Tenant:
    app_name: str
    secret: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def new_tenant_with_secret(http: aiohttp.ClientSession, gateway_url: str, admin_token: str) -> Tenant:
    app_name = f"dash-{secrets.token_hex(4)}"
    async with http.post(
        f"{gateway_url}/admin/tenants",
        json={"app_name": app_name, "display_name": f"Shop {app_name}"},
        headers={"Authorization": f"Bearer {admin_token}"},
    ) as r:
        assert r.status == 201, await r.text()
        secret = (await r.json())["secret"]
    async with http.post(f"{gateway_url}/v1/auth/token", json={"app_name": app_name, "secret": secret}) as r:
        assert r.status == 200, await r.text()
        token = (await r.json())["access_token"]
    return Tenant(app_name, secret, token)


class Browser:
    """One browser: its own cookie jar (IP-address cookies allowed: everything is on 127.0.0.1)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.jar = aiohttp.CookieJar(unsafe=True)
        self.http = aiohttp.ClientSession(cookie_jar=self.jar, timeout=aiohttp.ClientTimeout(total=30))

    async def close(self) -> None:
        await self.http.close()

    async def get(self, path: str, **kwargs: Any) -> tuple[int, str, aiohttp.ClientResponse]:
        async with self.http.get(self.base_url + path, allow_redirects=False, **kwargs) as r:
            return r.status, await r.text(), r

    async def post(self, path: str, data: dict[str, str], **kwargs: Any) -> tuple[int, str, aiohttp.ClientResponse]:
        async with self.http.post(self.base_url + path, data=data, allow_redirects=False, **kwargs) as r:
            return r.status, await r.text(), r

    async def submit(
        self, page_path: str, action: str, data: dict[str, str]
    ) -> tuple[int, str, aiohttp.ClientResponse]:
        """Load ``page_path``, then post ``data`` to ``action`` with the page's CSRF token."""
        status, page, _ = await self.get(page_path)
        assert status == 200, page
        return await self.post(action, {"csrf_token": csrf_of(page), **data})

    async def sign_in(self, app_name: str, secret: str) -> tuple[int, str, aiohttp.ClientResponse]:
        return await self.submit("/dashboard/sign-in", "/dashboard/sign-in", {"app_name": app_name, "secret": secret})

    def cookie(self, name: str) -> str | None:
        for cookie in self.jar:
            if cookie.key == name:
                return cookie.value
        return None
