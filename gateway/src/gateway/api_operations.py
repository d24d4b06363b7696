"""The gateway's own public operations (tokens, tenants, operations, the API's own document),
declared for the OpenAPI document. The routes it only forwards are declared by the services that
serve them (``<service>.api.openapi``)."""

from __future__ import annotations

from billing_contracts.openapi import Auth, Operation, Reply, path_param, query_int, query_text
from billing_contracts.openapi.operations import HTML
from billing_runtime.paging import ID_MAX_LENGTH, ID_PATTERN, MAX_OFFSET

from gateway.responses import AccessToken, Health, PlatformStatus, Readiness, Tenant, TenantList, TenantWithSecret
from gateway.schemas import TenantCreate, TenantUpdate, TokenRequest

AUTH = "Authentication"
TENANTS = "Tenants"
OPERATIONS_TAG = "Operations"

TENANT_ID = path_param("tenant_id", "The tenant's id (`ten_…`).")
_NO_STORE = ("Cache-Control",)

OPERATIONS = (
    Operation(
        "POST",
        "/v1/auth/token",
        "Trade app name and secret for an access token",
        AUTH,
        Auth.PUBLIC,
        (Reply(200, "A tenant access token (JWT).", AccessToken, headers=_NO_STORE),),
        "issueToken",
        body=TokenRequest,
        # 401 for a wrong pair or a disabled tenant; 429 per client or app name; 503 auth_busy.
        errors=(401, 429),
    ),
    Operation(
        "POST",
        "/admin/tenants",
        "Register a tenant",
        TENANTS,
        Auth.ADMIN,
        (Reply(201, "The tenant with its secret (shown once).", TenantWithSecret, headers=_NO_STORE),),
        "createTenant",
        body=TenantCreate,
        errors=(409,),
    ),
    Operation(
        "GET",
        "/admin/tenants",
        "List tenants, newest first",
        TENANTS,
        Auth.ADMIN,
        (Reply(200, "A page of tenants.", TenantList),),
        "listTenants",
        params=(
            query_int("limit", "Page size.", default=20, lo=1, hi=100),
            query_int("offset", "Rows to skip (capped; not with a cursor).", default=0, lo=0, hi=MAX_OFFSET),
            query_text(
                "starting_after", "Older than this tenant (an id).", max_length=ID_MAX_LENGTH, pattern=ID_PATTERN
            ),
            query_text(
                "ending_before", "Newer than this tenant (an id).", max_length=ID_MAX_LENGTH, pattern=ID_PATTERN
            ),
        ),
    ),
    Operation(
        "GET",
        "/admin/tenants/{tenant_id}",
        "Retrieve a tenant",
        TENANTS,
        Auth.ADMIN,
        (Reply(200, "The tenant.", Tenant),),
        "getTenant",
        params=(TENANT_ID,),
    ),
    Operation(
        "PATCH",
        "/admin/tenants/{tenant_id}",
        "Disable or enable a tenant",
        TENANTS,
        Auth.ADMIN,
        (Reply(200, "The tenant.", Tenant),),
        "updateTenant",
        params=(TENANT_ID,),
        body=TenantUpdate,
    ),
    Operation(
        "POST",
        "/admin/tenants/{tenant_id}/rotate-secret",
        "Rotate a tenant's secret (the old one keeps working for a grace period)",
        TENANTS,
        Auth.ADMIN,
        (Reply(200, "The tenant with its new secret (shown once).", TenantWithSecret, headers=_NO_STORE),),
        "rotateTenantSecret",
        params=(TENANT_ID,),
    ),
    Operation(
        "GET",
        "/healthz",
        "The process is alive",
        OPERATIONS_TAG,
        Auth.PUBLIC,
        (Reply(200, "Alive.", Health),),
        "healthz",
        problems=False,
    ),
    Operation(
        "GET",
        "/readyz",
        "The gateway's database and upstreams are reachable",
        OPERATIONS_TAG,
        Auth.ADMIN,
        (
            Reply(200, "Ready.", Readiness),
            Reply(503, "Not ready, or draining.", Readiness, headers=("Retry-After",)),
        ),
        "readyz",
        errors=(401,),
        problems=False,
    ),
    Operation(
        "GET",
        "/metrics",
        "Prometheus metrics",
        OPERATIONS_TAG,
        Auth.ADMIN,
        (Reply(200, "Prometheus text format.", content_type="text/plain", schema={"type": "string"}),),
        "metrics",
        errors=(401,),
        problems=False,
    ),
    Operation(
        "GET",
        "/openapi.json",
        "This document",
        OPERATIONS_TAG,
        Auth.PUBLIC,
        (
            Reply(200, "The OpenAPI 3.1 document.", schema={"type": "object"}, headers=("ETag", "Cache-Control")),
            Reply(304, "Not modified (`If-None-Match`).", headers=("ETag",)),
        ),
        "openapi",
        problems=False,
    ),
    Operation(
        "GET",
        "/docs",
        "This document, readable",
        OPERATIONS_TAG,
        Auth.PUBLIC,
        (
            Reply(200, "The reference as an HTML page.", content_type=HTML, headers=("ETag", "Cache-Control")),
            Reply(304, "Not modified (`If-None-Match`).", headers=("ETag",)),
        ),
        "docs",
        problems=False,
    ),
    Operation(
        "GET",
        "/admin/status",
        "The platform's background machinery at a glance",
        OPERATIONS_TAG,
        Auth.ADMIN,
        (Reply(200, "Every service's queues, dead letters, outbox, processes and janitors.", PlatformStatus),),
        "platformStatus",
    ),
)
