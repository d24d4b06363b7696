"""The public operations providers-svc serves behind the gateway, declared for the OpenAPI document:
the provider-account admin API, the Stripe projections, the provider callbacks (each in its
provider's own format, never problem+json) and the payer pages (HTML)."""

from __future__ import annotations

from typing import Any

from billing_contracts.openapi import Auth, Operation, Param, Reply, path_param, query_choice, query_int, query_text
from billing_contracts.openapi.operations import HTML
from billing_runtime.paging import ID_MAX_LENGTH, ID_PATTERN, MAX_OFFSET

from providers_svc.api.accounts import AccountCreate, AccountUpdate, Assignment
from providers_svc.api.responses import (
    AdminStripeObject,
    AdminStripeObjectList,
    DeletedProviderAccount,
    DeletedProviderAccountAssignment,
    ProviderAccount,
    ProviderAccountAssignment,
    ProviderAccountAssignmentList,
    ProviderAccountList,
    StripeObject,
    StripeObjectList,
    TenantProviderList,
)
from providers_svc.domain.accounts import PROVIDERS
from providers_svc.domain.stripe_objects import KIND_OF_PATH

ACCOUNTS = "Provider accounts"
STRIPE = "Stripe objects"
CALLBACKS = "Provider callbacks"
PAGES = "Payer pages"

ACCOUNT_ID = path_param("account_id", "The provider account's id (`pac_…`).")
TENANT_ID = path_param("tenant_id", "The tenant's id (`ten_…`).")
PROVIDER = path_param("provider", "One of " + ", ".join(PROVIDERS) + ".")
KIND = path_param("kind", "Which objects: " + ", ".join(sorted(KIND_OF_PATH)) + ".")
STRIPE_ID = path_param("stripe_id", "The object's Stripe id.", pattern="^[A-Za-z0-9_]{1,255}$")
_STRIPE_ID = "^[A-Za-z0-9_]{1,255}$"
_UNIX = {"type": "integer", "minimum": 0, "maximum": 253_402_300_799}
STRIPE_FILTERS = (
    query_int("limit", "Page size.", default=20, lo=1, hi=100),
    query_text("starting_after", "Older than this object.", max_length=255, pattern=_STRIPE_ID),
    query_text("ending_before", "Newer than this object.", max_length=255, pattern=_STRIPE_ID),
    query_text("customer", "Only this customer's objects.", max_length=255, pattern=_STRIPE_ID),
    query_text("status", "Only objects in this status.", max_length=64, pattern="^[a-z_]{1,64}$"),
)


def _created(name: str, what: str) -> Param:
    return Param(name, "query", _UNIX, f"Created {what} (unix seconds), as Stripe's `{name}`.")


CREATED_FILTERS = (
    _created("created", "at"),
    _created("created[gt]", "after"),
    _created("created[gte]", "at or after"),
    _created("created[lt]", "before"),
    _created("created[lte]", "at or before"),
)

# Provider formats, as each provider defines them (providers/PROTOCOLS.md): described, not modelled.
_OBJECT: dict[str, Any] = {"type": "object"}
PAYME_REQUEST = {
    "type": "object",
    "description": "A Payme Merchant API JSON-RPC 2.0 call (CheckPerformTransaction, CreateTransaction, ...).",
    "properties": {"id": {}, "method": {"type": "string"}, "params": {"type": "object"}},
}
PAYME_ANSWER = {
    "type": "object",
    "description": "A JSON-RPC 2.0 answer: `result`, or `error` with Payme's code (-31001, -32504, ...).",
    "properties": {"id": {}, "result": {}, "error": {"type": "object"}},
}
CLICK_REQUEST = {
    "type": "object",
    "description": "Click SHOP-API's Prepare (action 0) or Complete (action 1), signed with `sign_string`.",
    "properties": {
        name: {"type": "string"}
        for name in (
            "click_trans_id",
            "service_id",
            "click_paydoc_id",
            "merchant_trans_id",
            "merchant_prepare_id",
            "amount",
            "action",
            "error",
            "error_note",
            "sign_time",
            "sign_string",
        )
    },
}
CLICK_ANSWER = {
    "type": "object",
    "description": "Click's answer: `error` 0 or Click's negative error code, with `error_note`.",
    "properties": {"error": {"type": "integer"}, "error_note": {"type": "string"}},
}
ERROR_ANSWER = {"type": "object", "properties": {"error": {"type": "string"}}}


def _callback(
    path: str,
    provider: str,
    summary: str,
    body: dict[str, Any],
    content_type: str = "application/json",
    answers: tuple[Reply, ...] = (),
    security: tuple[str, ...] = (),
) -> Operation:
    return Operation(
        "POST",
        path,
        summary,
        CALLBACKS,
        Auth.PROVIDER,
        answers,
        f"{provider}Callback",
        body_schema=body,
        body_content_type=content_type,
        problems=False,
        security=security,
    )


def _signed_answers(provider: str) -> tuple[Reply, ...]:
    return (
        Reply(200, "Recorded (or already recorded: deliveries are idempotent).", schema=_OBJECT),
        Reply(400, f"Not a valid {provider} event, or its signature does not verify.", schema=ERROR_ANSWER),
        Reply(413, "The body is over the size limit.", schema=ERROR_ANSWER),
        Reply(503, "Not recorded now; the provider retries.", schema=ERROR_ANSWER, headers=("Retry-After",)),
    )


def _page(method: str, path: str, summary: str, operation_id: str, *params: Any) -> Operation:
    replies: tuple[Reply, ...] = (
        Reply(200, "The page.", content_type=HTML),
        Reply(303, "Done: the payer goes back to the shop's return URL.", headers=("Location",)),
        Reply(404, "No such transaction (or not payable here).", content_type=HTML),
    )
    if method == "POST":
        replies += (Reply(400, "Not a choice the page offers.", content_type=HTML),)
    return Operation(
        method,
        path,
        summary,
        PAGES,
        Auth.PAYER_LINK,
        replies,
        operation_id,
        params=params,
        body_schema=PAYER_CHOICE if method == "POST" else None,
        body_content_type="application/x-www-form-urlencoded",
        body_required=False,
        problems=False,
    )


# The button the payer pressed: ``outcome`` on the sandbox and simulator pages, ``card`` on Stripe's.
PAYER_CHOICE = {"type": "object", "properties": {"outcome": {"type": "string"}, "card": {"type": "string"}}}
TXN = path_param("transaction_id", "The provider transaction's id (`ptx_…`).")
OPERATIONS = (
    Operation(
        "POST",
        "/admin/provider-accounts",
        "Register a provider account",
        ACCOUNTS,
        Auth.ADMIN,
        (Reply(201, "The account (credentials never shown).", ProviderAccount),),
        "createProviderAccount",
        body=AccountCreate,
        errors=(409,),
    ),
    Operation(
        "GET",
        "/admin/provider-accounts",
        "List provider accounts, newest first",
        ACCOUNTS,
        Auth.ADMIN,
        (Reply(200, "A page of accounts.", ProviderAccountList),),
        "listProviderAccounts",
        params=(
            query_int("limit", "Page size.", default=20, lo=1, hi=100),
            query_int("offset", "Rows to skip (capped; not with a cursor).", default=0, lo=0, hi=MAX_OFFSET),
            query_text(
                "starting_after", "Older than this account (an id).", max_length=ID_MAX_LENGTH, pattern=ID_PATTERN
            ),
            query_text(
                "ending_before", "Newer than this account (an id).", max_length=ID_MAX_LENGTH, pattern=ID_PATTERN
            ),
            query_choice("provider", PROVIDERS, "Only this provider's accounts."),
        ),
    ),
    Operation(
        "GET",
        "/admin/provider-accounts/{account_id}",
        "Retrieve a provider account",
        ACCOUNTS,
        Auth.ADMIN,
        (Reply(200, "The account.", ProviderAccount),),
        "getProviderAccount",
        params=(ACCOUNT_ID,),
    ),
    Operation(
        "PATCH",
        "/admin/provider-accounts/{account_id}",
        "Change a provider account",
        ACCOUNTS,
        Auth.ADMIN,
        (Reply(200, "The account.", ProviderAccount),),
        "updateProviderAccount",
        params=(ACCOUNT_ID,),
        body=AccountUpdate,
        errors=(409,),
    ),
    Operation(
        "DELETE",
        "/admin/provider-accounts/{account_id}",
        "Delete a provider account (not while assigned)",
        ACCOUNTS,
        Auth.ADMIN,
        (Reply(200, "Deleted.", DeletedProviderAccount),),
        "deleteProviderAccount",
        params=(ACCOUNT_ID,),
        errors=(409,),
    ),
    Operation(
        "GET",
        "/admin/tenants/{tenant_id}/provider-accounts",
        "A tenant's assigned provider accounts",
        ACCOUNTS,
        Auth.ADMIN,
        (Reply(200, "Every assignment of the tenant.", ProviderAccountAssignmentList),),
        "listTenantProviderAccounts",
        params=(TENANT_ID,),
    ),
    Operation(
        "PUT",
        "/admin/tenants/{tenant_id}/provider-accounts/{provider}",
        "Assign a provider account to a tenant",
        ACCOUNTS,
        Auth.ADMIN,
        (Reply(200, "The assignment.", ProviderAccountAssignment),),
        "assignProviderAccount",
        params=(TENANT_ID, PROVIDER),
        body=Assignment,
        errors=(409,),
    ),
    Operation(
        "DELETE",
        "/admin/tenants/{tenant_id}/provider-accounts/{provider}",
        "Unassign a tenant's provider account",
        ACCOUNTS,
        Auth.ADMIN,
        (Reply(200, "Unassigned.", DeletedProviderAccountAssignment),),
        "unassignProviderAccount",
        params=(TENANT_ID, PROVIDER),
    ),
    Operation(
        "GET",
        "/v1/providers",
        "List the providers the tenant's payments are offered",
        ACCOUNTS,
        Auth.TENANT,
        (Reply(200, "Every provider offered in the tenant's mode, and where it comes from.", TenantProviderList),),
        "listTenantProviders",
    ),
    Operation(
        "GET",
        "/v1/stripe/{kind}",
        "List the tenant's projected Stripe objects",
        STRIPE,
        Auth.TENANT,
        (Reply(200, "A page of objects, newest first.", StripeObjectList),),
        "listStripeObjects",
        params=(KIND, *STRIPE_FILTERS, *CREATED_FILTERS),
    ),
    Operation(
        "GET",
        "/v1/stripe/{kind}/{stripe_id}",
        "Retrieve one of the tenant's projected Stripe objects",
        STRIPE,
        Auth.TENANT,
        (Reply(200, "The object.", StripeObject),),
        "getStripeObject",
        params=(KIND, STRIPE_ID),
    ),
    Operation(
        "GET",
        "/admin/stripe/{kind}",
        "List every projected Stripe object",
        STRIPE,
        Auth.ADMIN,
        (Reply(200, "A page of objects, newest first.", AdminStripeObjectList),),
        "adminListStripeObjects",
        params=(
            KIND,
            *STRIPE_FILTERS,
            *CREATED_FILTERS,
            query_text("tenant", "Only this tenant's objects.", max_length=64, pattern="^ten_[A-Za-z0-9_]{1,60}$"),
            query_text("account", "Only this account's objects.", max_length=40, pattern="^pac_[A-Za-z0-9_]{1,36}$"),
        ),
    ),
    Operation(
        "GET",
        "/admin/stripe/{kind}/{stripe_id}",
        "Retrieve any projected Stripe object",
        STRIPE,
        Auth.ADMIN,
        (Reply(200, "The object.", AdminStripeObject),),
        "adminGetStripeObject",
        params=(KIND, STRIPE_ID),
    ),
    _callback(
        "/billing/payme",
        "payme",
        "Payme Merchant API (JSON-RPC, Basic auth with the kassa key)",
        PAYME_REQUEST,
        answers=(Reply(200, "Always 200: the JSON-RPC result or error.", schema=PAYME_ANSWER),),
        security=("paymeBasic",),
    ),
    _callback(
        "/billing/click/prepare",
        "clickPrepare",
        "Click SHOP-API Prepare",
        CLICK_REQUEST,
        "application/x-www-form-urlencoded",
        (Reply(200, "Always 200: Click's answer, `error` 0 or Click's error code.", schema=CLICK_ANSWER),),
    ),
    _callback(
        "/billing/click/complete",
        "clickComplete",
        "Click SHOP-API Complete",
        CLICK_REQUEST,
        "application/x-www-form-urlencoded",
        (Reply(200, "Always 200: Click's answer, `error` 0 or Click's error code.", schema=CLICK_ANSWER),),
    ),
    _callback(
        "/billing/octo", "octo", "Octo's notification of a payment's status", _OBJECT, answers=_signed_answers("Octo")
    ),
    _callback(
        "/billing/stripe",
        "stripe",
        "Stripe webhook events (`Stripe-Signature`)",
        _OBJECT,
        answers=_signed_answers("Stripe"),
        security=("stripeSignature",),
    ),
    _callback(
        "/billing/sandbox",
        "sandbox",
        "The sandbox bank's signed outcome (`Sandbox-Signature`)",
        _OBJECT,
        answers=(*_signed_answers("sandbox"), Reply(404, "No such transaction.", schema=ERROR_ANSWER)),
        security=("sandboxSignature",),
    ),
    _page("GET", "/sandbox/pay/{transaction_id}", "The sandbox bank's payer page", "sandboxPage", TXN),
    _page("POST", "/sandbox/pay/{transaction_id}", "The payer's choice at the sandbox bank", "sandboxPay", TXN),
    _page("GET", "/simulators/payme/pay/{transaction_id}", "Payme simulator's payer page", "paymeSimulatorPage", TXN),
    _page(
        "POST",
        "/simulators/payme/pay/{transaction_id}",
        "The payer's choice at the Payme simulator",
        "paymeSimulatorPay",
        TXN,
    ),
    _page("GET", "/simulators/click/pay/{transaction_id}", "Click simulator's payer page", "clickSimulatorPage", TXN),
    _page(
        "POST",
        "/simulators/click/pay/{transaction_id}",
        "The payer's choice at the Click simulator",
        "clickSimulatorPay",
        TXN,
    ),
    _page(
        "GET",
        "/simulators/octo/pay/{payment_uuid}",
        "Octo simulator's payer page",
        "octoSimulatorPage",
        path_param("payment_uuid", "The simulated Octo payment."),
    ),
    _page(
        "POST",
        "/simulators/octo/pay/{payment_uuid}",
        "The payer's choice at the Octo simulator",
        "octoSimulatorPay",
        path_param("payment_uuid", "The simulated Octo payment."),
    ),
    _page("GET", "/pay/octo/{transaction_id}", "Octo's return page (no return URL given)", "octoReturn", TXN),
    _page(
        "GET",
        "/pay/stripe/{transaction_id}/{token}",
        "Stripe payer page (flow=payment_intent)",
        "stripePage",
        TXN,
        path_param("token", "The link's token."),
    ),
    _page(
        "POST",
        "/pay/stripe/{transaction_id}/{token}",
        "The payer's step on the Stripe payer page",
        "stripePay",
        TXN,
        path_param("token", "The link's token."),
    ),
    _page(
        "GET",
        "/pay/stripe/{transaction_id}/{token}/return",
        "Stripe Checkout's return page (no return URL given)",
        "stripeReturn",
        TXN,
        path_param("token", "The link's token."),
    ),
)
