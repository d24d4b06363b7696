"""The OpenAPI document: the committed file is what the declarations build, every routed public path
and method is documented and every documented operation is routed, and its schemas are valid."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.web_urldispatcher import PrefixedSubAppResource
from billing_embedded.database import DatabaseServer
from billing_embedded.openapi import document, render
from billing_embedded.platform import build_apps, build_config
from billing_runtime.bus.memory import MemoryBus
from gateway.api_docs import DOCUMENT_PATH
from gateway.proxy import ROUTES
from jsonschema import Draft202012Validator

# Where the gateway forwards to a service: a service's route below one of these is public.
PUBLIC_PREFIXES = (
    *(route.prefix for route in ROUTES),
    "/admin/provider-accounts",
    "/admin/tenants/",  # /admin/tenants/{tenant_id}/provider-accounts…
    "/admin/stripe",
    "/admin/reconciliation",
)
NOT_DOCUMENTED = {
    # The simulators' fake provider APIs: our own adapters call them (through the gateway) as they
    # would call Click's Merchant API and Octo's API; they speak those providers' protocols and are
    # no part of the API a tenant or operator uses.
    ("GET", "/simulators/click/merchant/payment/status_by_mti/{service_id}/{merchant_trans_id}/{day}"),
    ("GET", "/simulators/click/merchant/payment/status/{service_id}/{payment_id}"),
    ("DELETE", "/simulators/click/merchant/payment/reversal/{service_id}/{payment_id}"),
    ("POST", "/simulators/octo/prepare_payment"),
    ("POST", "/simulators/octo/set_accept"),
    ("POST", "/simulators/octo/refund"),
}


def _template(path: str) -> str:
    """aiohttp's ``{name:regex}`` as OpenAPI's ``{name}``."""
    return re.sub(r"\{(\w+):[^}]*\}", r"{\1}", path)


def _routes(app: web.Application) -> Iterator[tuple[str, str]]:
    for resource in app.router.resources():
        if isinstance(resource, PrefixedSubAppResource):
            # A sub-application's resources already carry its prefix.
            yield from _routes(resource.get_info()["app"])
            continue
        for route in resource:
            if route.method != "HEAD":  # aiohttp adds HEAD to every GET
                yield route.method, _template(resource.canonical)


def routed(tmp_path: Path) -> set[tuple[str, str]]:
    """Every public (method, path) of the platform as its apps route it (built, never started)."""
    config = build_config(tmp_path, DatabaseServer(tmp_path))
    apps = [app for app, _, _ in build_apps(config, MemoryBus())]
    gateway_app, services = apps[0], apps[2:]  # [1] is checkout-web: its own site, not the API
    public: set[tuple[str, str]] = set()
    for method, path in _routes(gateway_app):
        # The gateway's forwarding routes ("*", or a {tail}) are documented by what they reach.
        if method != "*" and "{tail}" not in path and not path.startswith("/admin/stripe"):
            public.add((method, path))
    for app in services:
        for method, path in _routes(app):
            if path.startswith(PUBLIC_PREFIXES):
                public.add((method, path))
    return public - NOT_DOCUMENTED


def documented() -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document()["paths"].items() for method in item}


def test_every_routed_operation_is_documented_and_every_documented_one_routed(tmp_path: Path) -> None:
    routes = routed(tmp_path)
    docs = documented()
    # A route for every method ("*": Payme answers any) is documented by its path's operations.
    any_method = {path for method, path in routes if method == "*"}
    missing = sorted(f"{m} {p}" for m, p in routes if m != "*" and (m, p) not in docs)
    missing += sorted(f"* {p}" for p in any_method if not any(dp == p for _, dp in docs))
    unrouted = sorted(f"{m} {p}" for m, p in docs if (m, p) not in routes and p not in any_method)
    assert not missing, "routed but not in the OpenAPI registry (declare them in <service>.api.openapi): " + ", ".join(
        missing
    )
    assert not unrouted, "documented but not routed: " + ", ".join(unrouted)


def test_committed_document_is_what_the_declarations_build() -> None:
    built = render(document())
    committed = DOCUMENT_PATH.read_text(encoding="utf-8")
    if built != committed:
        diff = "".join(
            list(difflib.unified_diff(committed.splitlines(True), built.splitlines(True), "committed", "built"))[:60]
        )
        pytest.fail(f"{DOCUMENT_PATH.name} is stale: run `make openapi`\n{diff}")


def test_every_schema_is_valid_json_schema() -> None:
    doc = json.loads(render(document()))
    assert doc["openapi"].startswith("3.1")
    for name, schema in doc["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)  # raises naming the bad keyword
        assert schema, name
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids)), "operationIds must be unique"


def test_every_operation_declares_what_it_needs() -> None:
    for path, item in document()["paths"].items():
        for method, op in item.items():
            where = f"{method.upper()} {path}"
            assert op["summary"] and op["tags"], where
            assert any(s.startswith(("2", "3")) for s in op["responses"]), f"{where}: no success answer"
            names = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert names == set(re.findall(r"\{(\w+)\}", path)), f"{where}: path parameters"
            if any(name in entry for entry in op["security"] for name in ("tenantToken", "adminToken")):
                assert "401" in op["responses"], f"{where}: authenticated but no 401"
            if "503" in op["responses"] and "problem+json" in json.dumps(op["responses"]["503"]):
                assert "Retry-After" in op["responses"]["503"]["headers"], where
