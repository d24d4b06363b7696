"""Fixtures of the API tests: the app with its default providers, and the gateway's token, which the
admin API of provider accounts takes (providers-svc serves it to the gateway only)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
async def client(make_client: Any) -> Any:
    return await make_client()


@pytest.fixture
def admin(internal_headers: Any) -> dict[str, str]:
    return dict(internal_headers(None, issuer="gateway"))
