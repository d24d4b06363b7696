"""Schemathesis against the embedded platform, every operation of the OpenAPI document, with a real
tenant token and the admin token: no 5xx, and no answer the document
does not describe (status, content type, body schema)."""

from __future__ import annotations

import os
import secrets
from typing import Any

import pytest
import requests
import schemathesis
from gateway.api_docs import DOCUMENT_PATH
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def credentials(embedded_platform: Any) -> dict[str, dict[str, str]]:
    """A real tenant's access token and the admin token, by the document's security scheme."""
    base, admin = embedded_platform.gateway_url, {"Authorization": f"Bearer {embedded_platform.admin_token}"}
    app_name = f"fuzz-{secrets.token_hex(4)}"
    created = requests.post(
        f"{base}/admin/tenants", json={"app_name": app_name, "display_name": "Fuzz"}, headers=admin, timeout=30
    )
    assert created.status_code == 201, created.text
    token = requests.post(
        f"{base}/v1/auth/token", json={"app_name": app_name, "secret": created.json()["secret"]}, timeout=30
    )
    assert token.status_code == 200, token.text
    return {"tenantToken": {"Authorization": f"Bearer {token.json()['access_token']}"}, "adminToken": admin}


# The file the gateway serves (gateway/tests/test_api_docs.py checks it is served as it is); the
# lazy loader (from_fixture) does not run on pytest 9.
schema = (
    schemathesis.openapi.from_path(DOCUMENT_PATH)
    # Provider callbacks answer in the providers' own formats (Payme's JSON-RPC errors come with 200,
    # Click's with its own codes) and payer pages are HTML for a browser: the document describes them
    # loosely (provider formats, text/html), so a conformance check says nothing about them. Their
    # own suites fuzz them (providers-svc tests/*/test_*robustness*, test_fuzz_input).
    .exclude(tag="Provider callbacks")
    .exclude(tag="Payer pages")
    # A tenant secret rotated or a tenant disabled by a generated request would take the fuzzing
    # tenant's token away from every later case; both are covered by tests/e2e/test_openapi_responses.py.
    .exclude(operation_id=["rotateTenantSecret", "updateTenant"])
)


@schema.parametrize()
@settings(
    # Small enough for the suite (about a minute over 53 operations); raise it to hunt for bugs.
    max_examples=int(os.environ.get("OPENAPI_FUZZ_EXAMPLES", "3")),
    deadline=None,
    derandomize=True,
    database=None,  # nothing written into the repository (.hypothesis)
    phases=[Phase.explicit, Phase.generate] + ([Phase.shrink] if os.environ.get("OPENAPI_FUZZ_EXAMPLES") else []),
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_conforms(case: Any, embedded_platform: Any, credentials: dict[str, dict[str, str]]) -> None:
    headers: dict[str, str] = {}
    for requirement in case.operation.definition.raw.get("security", []):
        for name in requirement:
            headers.update(credentials.get(name, {}))
    case.call_and_validate(base_url=embedded_platform.gateway_url, headers=headers, checks=CHECKS, timeout=30)
