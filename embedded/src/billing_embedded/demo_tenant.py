"""The demo shop's tenant: a test tenant created through the gateway's admin API on the first start,
its secret kept in the data directory's secrets file, and reused (its allowed origins brought up to
date with the demo shop's origin) on every later start."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from billing_embedded.secrets_file import load_demo_tenant, save_demo_tenant

DEMO_APP_NAME = "demo-shop"
DEMO_DISPLAY_NAME = "Demo Shop"


@dataclass(frozen=True)
class DemoTenant:
    tenant_id: str
    app_name: str
    secret: str


class DemoTenantError(Exception):
    """The gateway refused or failed a call of the demo tenant's set-up (the platform runs without it)."""


class _Admin:
    """The few admin calls the set-up makes, with the platform's admin token."""

    def __init__(self, session: aiohttp.ClientSession, gateway_url: str, admin_token: str) -> None:
        self._session = session
        self._gateway_url = gateway_url
        self._headers = {"Authorization": f"Bearer {admin_token}"}

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        async with self._session.request(
            method, self._gateway_url + path, json=body, headers=self._headers
        ) as response:
            return response.status, await response.json(content_type=None)


async def ensure_demo_tenant(
    session: aiohttp.ClientSession, *, gateway_url: str, admin_token: str, data_dir: Path, origin: str
) -> DemoTenant:
    """The demo tenant, created on the first start, with ``origin`` as its only allowed origin."""
    admin = _Admin(session, gateway_url, admin_token)
    stored = load_demo_tenant(data_dir)
    if stored is not None:
        status, body = await admin.call(
            "PATCH", f"/admin/tenants/{stored['demo_tenant_id']}", {"allowed_origins": [origin]}
        )
        if status == 200:
            return DemoTenant(stored["demo_tenant_id"], stored["demo_app_name"], stored["demo_secret"])
        if status != 404:
            raise DemoTenantError(f"updating the demo tenant's origins: {status} {_code(body)}")
        # The secrets file outlived the tenant (a database made afresh): create it again.
    status, body = await admin.call(
        "POST",
        "/admin/tenants",
        {"app_name": DEMO_APP_NAME, "display_name": DEMO_DISPLAY_NAME, "livemode": False, "allowed_origins": [origin]},
    )
    if status == 409:
        body = await _take_over(admin, origin)
    elif status != 201:
        raise DemoTenantError(f"creating the demo tenant: {status} {_code(body)}")
    tenant = DemoTenant(body["id"], body["app_name"], body["secret"])
    save_demo_tenant(
        data_dir, {"demo_tenant_id": tenant.tenant_id, "demo_app_name": tenant.app_name, "demo_secret": tenant.secret}
    )
    return tenant


async def _take_over(admin: _Admin, origin: str) -> Any:
    """A ``demo-shop`` tenant exists but the secrets file lost it: give it a new secret (the old one
    keeps working for the rotation's grace period) and the demo's origin."""
    # By cursor: the offset stops at 10,000 tenants, a cursor goes on.
    query = "limit=100"
    while True:
        status, page = await admin.call("GET", f"/admin/tenants?{query}")
        if status != 200:
            raise DemoTenantError(f"listing tenants: {status} {_code(page)}")
        found = [t for t in page["data"] if t["app_name"] == DEMO_APP_NAME]
        if found:
            break
        if not page["has_more"]:
            raise DemoTenantError("the demo tenant's app name is taken, yet no tenant has it")
        query = f"limit=100&starting_after={page['data'][-1]['id']}"
    tenant_id = found[0]["id"]
    if found[0]["livemode"]:
        raise DemoTenantError(f"a live tenant is named {DEMO_APP_NAME}: the demo needs a test tenant")
    status, body = await admin.call("POST", f"/admin/tenants/{tenant_id}/rotate-secret")
    if status != 200:
        raise DemoTenantError(f"rotating the demo tenant's secret: {status} {_code(body)}")
    status, patched = await admin.call("PATCH", f"/admin/tenants/{tenant_id}", {"allowed_origins": [origin]})
    if status != 200:
        raise DemoTenantError(f"updating the demo tenant's origins: {status} {_code(patched)}")
    return body


def _code(body: Any) -> str:
    return str(body.get("code")) if isinstance(body, dict) else "(no problem body)"
