"""Helpers of the reconciliation routes' tests: reconciliation-svc's token (a platform call, no
tenant) and the outcome events written to the outbox."""

from __future__ import annotations

import json
from typing import Any

from billing_runtime.internal_auth import INTERNAL_HEADER, sign_internal

INTERNAL_SECRET = "test-internal-secret-0123456789abcdef"
RECONCILIATION_SECRET = "test-reconciliation-secret-0123456789abcdef"


def reconciliation_headers(
    *, tenant_id: str | None = None, issuer: str = "reconciliation", secret: str | None = None
) -> dict[str, str]:
    """A token as ``issuer`` would sign it (reconciliation-svc with its own key, others with the shared
    one), or with ``secret`` to forge one."""
    if secret is None:
        secret = RECONCILIATION_SECRET if issuer == "reconciliation" else INTERNAL_SECRET
    token = sign_internal(secret, issuer=issuer, audience="providers", tenant_id=tenant_id)
    return {INTERNAL_HEADER: token}


async def outcome_events(db_read: Any) -> list[dict[str, Any]]:
    """The ``provider.payment.*`` envelopes in the outbox, oldest first."""
    rows = sorted(await db_read("outbox"), key=lambda row: row["id"])
    envelopes = [json.loads(row["body"]) for row in rows]
    return [e for e in envelopes if str(e["event_type"]).startswith("provider.payment.")]
