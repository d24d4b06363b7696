"""The per-request check behind every tenant access token: the tenant still exists, is not
disabled, and still accepts the secret generation that minted the token.

It reads the tenant row on every request, with one precompiled statement outside any transaction,
instead of caching it: a tenant disabled, or a secret whose grace period ends, is refused on the next
request of every gateway replica, with no invalidation to miss (see the README for its measured cost).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from billing_runtime.problems import ProblemError
from billing_runtime.writes import fetch_alone
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.auth import TenantToken, invalid_token, unauthorized
from gateway.db.models import Tenant

_ACCESS = select(
    Tenant.display_name,
    Tenant.livemode,
    Tenant.disabled,
    Tenant.secret_generation,
    Tenant.previous_secret_expires_at,
).where(Tenant.id == bindparam("tenant_id"))


@dataclass(frozen=True)
class TenantAccess:
    """What a proxied call tells the service behind: who the tenant is and its mode."""

    tenant_id: str
    display_name: str
    livemode: bool


def tenant_disabled() -> ProblemError:
    return unauthorized("tenant_disabled", "This tenant is disabled")


def token_revoked() -> ProblemError:
    return unauthorized("token_revoked", "The secret that issued this access token has been rotated out")


def check_access(token: TenantToken, row: dict[str, object] | None, now: datetime) -> TenantAccess:
    """The tenant behind ``token``, or a 401: no such tenant, disabled, or a retired secret generation."""
    if row is None:  # a well-signed token for a tenant that no longer exists
        raise invalid_token()
    if row["disabled"]:
        raise tenant_disabled()
    current = row["secret_generation"]
    assert isinstance(current, int)
    if token.generation != current:
        # Only the secret right before the current one has a grace period (rotation keeps one).
        expires_at = row["previous_secret_expires_at"]
        in_grace = isinstance(expires_at, datetime) and now < expires_at
        if token.generation != current - 1 or not in_grace:
            raise token_revoked()
    return TenantAccess(token.tenant_id, str(row["display_name"]), bool(row["livemode"]))


async def read_access_row(engine: AsyncEngine, tenant_id: str) -> dict[str, object] | None:
    """The tenant's access columns: one round trip (no BEGIN/COMMIT)."""
    rows = await fetch_alone(engine, _ACCESS, {"tenant_id": tenant_id})
    return rows[0] if rows else None
