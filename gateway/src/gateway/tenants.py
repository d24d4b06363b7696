"""Tenant use cases: register, rotate a secret, disable, authenticate an app."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from billing_runtime.ids import new_id
from billing_runtime.paging import ListPaging, unknown_cursor
from billing_runtime.problems import ProblemError
from sqlalchemy.exc import IntegrityError

from gateway.db.models import Tenant
from gateway.db.uow import UnitOfWork
from gateway.schemas import APP_NAME_PATTERN, TenantCreate, TenantUpdate
from gateway.tenant_access import announce_change
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
            livemode=cmd.livemode,
            disabled=False,
            allowed_origins=cmd.allowed_origins,
            secret_generation=1,
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


async def list_tenants(uow: UnitOfWork, paging: ListPaging) -> tuple[Sequence[Tenant], bool]:
    """One page, newest first, and whether more follow (beyond it, or before an ``ending_before``
    cursor). A cursor must name a tenant (else 422)."""
    async with uow:
        if paging.cursor is not None and await uow.tenants.get(paging.cursor.object_id) is None:
            raise unknown_cursor(paging.cursor)
        rows = await uow.tenants.newest_first(
            limit=paging.fetch,
            offset=paging.offset,
            starting_after=paging.starting_after,
            ending_before=paging.ending_before,
        )
    return paging.page(rows)


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
        tenant.secret_generation += 1
        tenant.updated_at = now
        await announce_change(uow.session, tenant_id)
        await uow.commit()
    return TenantWithSecret(tenant, secret)


async def update_tenant(uow: UnitOfWork, tenant_id: str, cmd: TenantUpdate, now: datetime) -> Tenant:
    """Disable or enable a tenant, or replace its allowed origins. Takes effect on this replica's next
    request (its caller drops the replica's copies after the commit) and on every other replica's once
    the announcement arrives, milliseconds later (``gateway.tenant_access``)."""
    if not is_tenant_id(tenant_id):
        raise _tenant_not_found()
    async with uow:
        tenant = await uow.tenants.get(tenant_id, for_update=True)
        if tenant is None:
            raise _tenant_not_found()
        changed = False
        if cmd.disabled is not None and tenant.disabled != cmd.disabled:
            tenant.disabled = cmd.disabled
            changed = True
        if cmd.allowed_origins is not None and list(tenant.allowed_origins) != cmd.allowed_origins:
            tenant.allowed_origins = cmd.allowed_origins
            changed = True
        if changed:
            tenant.updated_at = now
            await announce_change(uow.session, tenant_id)
            await uow.commit()
    return tenant


@dataclass(frozen=True)
class Authenticated:
    """An app that proved its secret, and the generation of the secret it used."""

    tenant: Tenant
    generation: int


async def authenticate_app(
    uow: UnitOfWork, hasher: SecretHasher, app_name: str, secret: str, now: datetime
) -> Authenticated | None:
    """The tenant when the pair is right, else None. An unknown app costs one hash check too, so
    the two failures take similar time. A disabled tenant is returned too: the caller refuses it,
    but only once the secret is proven, so its state is never told to someone without the secret."""
    tenant = None
    if _APP_NAME.fullmatch(app_name):
        async with uow:
            tenant = await uow.tenants.get_by_app_name(app_name)
    matched = await hasher.verify_tenant(tenant, secret, now)
    if tenant is None or matched is None:
        return None
    generation = tenant.secret_generation if matched == "current" else tenant.secret_generation - 1
    return Authenticated(tenant, generation)
