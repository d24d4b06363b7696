"""Tenant use cases: register, rotate a secret, authenticate an app; and the display-name cache."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from billing_runtime.ids import new_id
from billing_runtime.problems import ProblemError
from sqlalchemy.exc import IntegrityError

from gateway.db.models import Tenant
from gateway.db.uow import UnitOfWork
from gateway.schemas import APP_NAME_PATTERN, TenantCreate
from gateway.tenant_secrets import SecretHasher, new_secret

_APP_NAME = re.compile(APP_NAME_PATTERN)
# What billing_runtime.ids.new_id("ten") makes; anything else cannot exist, so it is not looked up.
_TENANT_ID = re.compile(r"^ten_[0-9a-z]{26}$")


def is_tenant_id(value: str) -> bool:
    return _TENANT_ID.fullmatch(value) is not None


@dataclass(frozen=True)
class TenantWithSecret:
    """A tenant and the plain secret just issued to it: the only moment the secret exists in clear."""

    tenant: Tenant
    secret: str


def _app_name_taken(app_name: str) -> ProblemError:
    return ProblemError(409, "app_name_taken", f"app_name {app_name!r} is already taken")


def _tenant_not_found() -> ProblemError:
    return ProblemError(404, "not_found", "No such tenant")


async def create_tenant(uow: UnitOfWork, hasher: SecretHasher, cmd: TenantCreate, now: datetime) -> TenantWithSecret:
    """Register a tenant with a fresh secret. 409 ``app_name_taken`` when the name is in use."""
    secret = new_secret()
    # Hash before the transaction opens: argon2 takes long enough to matter for a pooled connection.
    secret_hash = await hasher.hash(secret)
    async with uow:
        if await uow.tenants.get_by_app_name(cmd.app_name) is not None:
            raise _app_name_taken(cmd.app_name)
        tenant = Tenant(
            id=new_id("ten"),
            app_name=cmd.app_name,
            display_name=cmd.display_name,
            secret_hash=secret_hash,
            previous_secret_hash=None,
            previous_secret_expires_at=None,
            created_at=now,
            updated_at=now,
        )
        uow.tenants.add(tenant)
        try:
            await uow.commit()
        except IntegrityError as exc:  # lost a race with a concurrent create of the same name
            raise _app_name_taken(cmd.app_name) from exc
    return TenantWithSecret(tenant, secret)


async def get_tenant(uow: UnitOfWork, tenant_id: str) -> Tenant:
    if not is_tenant_id(tenant_id):
        raise _tenant_not_found()
    async with uow:
        tenant = await uow.tenants.get(tenant_id)
    if tenant is None:
        raise _tenant_not_found()
    return tenant


async def list_tenants(uow: UnitOfWork, *, limit: int, offset: int) -> tuple[Sequence[Tenant], bool]:
    """One page, newest first, and whether more follow."""
    async with uow:
        rows = await uow.tenants.newest_first(limit=limit + 1, offset=offset)
    return rows[:limit], len(rows) > limit


async def rotate_secret(
    uow: UnitOfWork, hasher: SecretHasher, tenant_id: str, *, grace: timedelta, now: datetime
) -> TenantWithSecret:
    """Issue a new secret; the current one stays valid for ``grace``. A secret still in its grace
    period from an earlier rotation stops working now (only one previous secret is kept)."""
    if not is_tenant_id(tenant_id):
        raise _tenant_not_found()
    secret = new_secret()
    secret_hash = await hasher.hash(secret)
    async with uow:
        # Locked so two concurrent rotations cannot both demote the same secret and lose one new secret.
        tenant = await uow.tenants.get(tenant_id, for_update=True)
        if tenant is None:
            raise _tenant_not_found()
        tenant.previous_secret_hash = tenant.secret_hash
        tenant.previous_secret_expires_at = now + grace
        tenant.secret_hash = secret_hash
        tenant.updated_at = now
        await uow.commit()
    return TenantWithSecret(tenant, secret)


async def authenticate_app(
    uow: UnitOfWork, hasher: SecretHasher, app_name: str, secret: str, now: datetime
) -> Tenant | None:
    """The tenant when the pair is right, else None. An unknown app costs one hash check too, so
    the two failures take similar time."""
    tenant = None
    if _APP_NAME.fullmatch(app_name):
        async with uow:
            tenant = await uow.tenants.get_by_app_name(app_name)
    return tenant if await hasher.verify_tenant(tenant, secret, now) else None


class TenantNameCache:
    """tenant id → display name for a short while, so a proxied request needs no database query.
    A tenant renamed or removed is noticed within ``ttl`` seconds."""

    def __init__(self, ttl: float, *, clock: Callable[[], float] = time.monotonic, max_entries: int = 100_000) -> None:
        self._ttl = ttl
        self._clock = clock
        self._max_entries = max_entries
        self._entries: dict[str, tuple[float, str]] = {}

    def get(self, tenant_id: str) -> str | None:
        entry = self._entries.get(tenant_id)
        if entry is None or entry[0] <= self._clock():
            return None
        return entry[1]

    def put(self, tenant_id: str, display_name: str) -> None:
        now = self._clock()
        if len(self._entries) >= self._max_entries:
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            if len(self._entries) >= self._max_entries:
                self._entries.clear()
        self._entries[tenant_id] = (now + self._ttl, display_name)


async def tenant_display_name(uow: UnitOfWork, cache: TenantNameCache, tenant_id: str) -> str | None:
    """The tenant's display name (cached), or None when no such tenant exists."""
    name = cache.get(tenant_id)
    if name is not None:
        return name
    if not is_tenant_id(tenant_id):
        return None
    async with uow:
        tenant = await uow.tenants.get(tenant_id)
    if tenant is None:
        return None
    cache.put(tenant.id, tenant.display_name)
    return tenant.display_name
