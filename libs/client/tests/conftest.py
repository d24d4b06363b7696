"""The client's tests run against the real embedded platform, started by the fixtures of
tests/e2e/conftest.py (loaded by path: conftest modules are not importable, and pytest runs with
``--import-mode=importlib``), plus a tenant of their own whose secret the client is given."""

from __future__ import annotations

import importlib.util
import secrets
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from billing_client import AsyncBillingClient

from .support import Tenant


def _load_e2e_fixtures() -> Any:
    path = Path(__file__).resolve().parents[3] / "tests" / "e2e" / "conftest.py"
    spec = importlib.util.spec_from_file_location("billing_client_tests_e2e_fixtures", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


_e2e = _load_e2e_fixtures()
embedded_platform = _e2e.embedded_platform
receiver = _e2e.receiver


@pytest.fixture
async def tenant(embedded_platform: Any) -> Tenant:
    """A new test tenant of the embedded platform: its app name and the secret shown once."""
    app_name = f"client-{secrets.token_hex(4)}"
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.post(
            f"{embedded_platform.gateway_url}/admin/tenants",
            json={"app_name": app_name, "display_name": f"Client {app_name}"},
            headers={"Authorization": f"Bearer {embedded_platform.admin_token}"},
        )
        assert r.status_code == 201, r.text
        body = r.json()
    return Tenant(
        embedded_platform.gateway_url,
        embedded_platform.checkout_url,
        embedded_platform.admin_token,
        body["id"],
        app_name,
        body["secret"],
    )


@pytest.fixture
async def client(tenant: Tenant) -> AsyncIterator[AsyncBillingClient]:
    async with AsyncBillingClient(tenant.gateway_url, tenant.app_name, tenant.secret) as c:
        yield c
