"""The whole public API's OpenAPI document: the gateway's own operations and those of every service
it forwards to, each declared by its owner (``<package>.api.openapi``, ``gateway.api_operations``).

``python -m billing_embedded.openapi`` (``make openapi``) writes it to the gateway's package, which
serves that file (``gateway.api_docs``); a test fails while the file differs from what this builds.
This package builds it because it is the one that depends on every service."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from billing_contracts.openapi import Operation, build_document
from gateway.api_docs import DOCUMENT_PATH
from payments_svc.api import openapi as payments
from providers_svc.api import openapi as providers
from reconciliation_svc.api import openapi as reconciliation
from webhook_dispatcher.api import openapi as webhooks

from gateway import api_operations as gateway_operations

TITLE = "Billing platform API"
VERSION = "1"
DESCRIPTION = (
    "The public API of the billing platform: everything the gateway serves. Tenants authenticate with "
    "an access token from `POST /v1/auth/token`; the platform operator with the admin token. Every "
    "4xx/5xx is `application/problem+json` with a stable `code` (provider callbacks and payer pages "
    "excepted: they answer in the provider's format, or in HTML). Money is an integer in the "
    "currency's minor unit; times are RFC 3339 in UTC."
)
TAGS = (
    ("Authentication", "Tenant access tokens."),
    ("Payments", "Payment intents: create, read, list, cancel."),
    ("Refunds", "Refunds of paid payments."),
    ("Events", "The tenant's event log, for backfill."),
    ("Webhook endpoints", "Where the platform sends signed webhooks (Standard Webhooks)."),
    ("Webhook deliveries", "Every delivery and attempt, and manual retries."),
    ("Stripe objects", "Stripe objects projected from the tenant's Stripe accounts."),
    ("Checkout", "The payer's side of a payment, authenticated by its checkout token."),
    ("Tenants", "Platform administration: tenants."),
    ("Provider accounts", "Platform administration: merchants' provider accounts."),
    ("Reconciliation", "Platform administration: settlement reconciliation."),
    ("Provider callbacks", "Called by the providers, in their own protocols."),
    ("Payer pages", "HTML pages a payer's browser is sent to (sandbox, simulators, Stripe)."),
    ("Operations", "Liveness, readiness, metrics and this document."),
    ("Webhooks", "What the platform sends to a tenant's webhook endpoints."),
)


def operations() -> tuple[Operation, ...]:
    """Every documented operation, whoever serves it."""
    return (
        *gateway_operations.OPERATIONS,
        *payments.OPERATIONS,
        *webhooks.OPERATIONS,
        *providers.OPERATIONS,
        *reconciliation.OPERATIONS,
    )


def document() -> dict[str, Any]:
    return build_document(
        operations(),
        title=TITLE,
        version=VERSION,
        description=DESCRIPTION,
        tags=TAGS,
        webhooks=webhooks.WEBHOOKS,
    )


def render(doc: dict[str, Any]) -> str:
    """The file's exact text: stable key order, so a regeneration changes only what changed."""
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def main() -> None:
    text = render(document())
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DOCUMENT_PATH
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target} ({len(text)} bytes)")


if __name__ == "__main__":
    main()
