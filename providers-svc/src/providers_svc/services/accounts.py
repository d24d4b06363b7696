"""Use cases of provider accounts (API.md "Provider accounts"), called by the gateway's admin API.

Credentials are stored as one ciphertext of their JSON (``billing_runtime.key_ring``) and leave this
module only decrypted for an adapter (``credentials_of``): no answer, log line or error carries them.
"""

from __future__ import annotations

import functools
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from billing_contracts.envelope import utcnow
from billing_contracts.problems import FieldError
from billing_runtime.db import table_of
from billing_runtime.ids import new_id
from billing_runtime.key_ring import KeyRing
from billing_runtime.paging import ListPaging, unknown_cursor
from billing_runtime.problems import ProblemError, validation_error
from sqlalchemy import Select, and_, bindparam, or_, select, text

from providers_svc.db.models import ProviderAccountRow, TenantProviderAccountRow
from providers_svc.domain.accounts import (
    PROVIDER_CURRENCIES,
    AccountRuleError,
    BoundAccount,
    Environment,
    check_assignment,
    check_credentials,
    check_currencies,
    check_settings,
    check_signature_key,
    settings_with_defaults,
)
from providers_svc.services.account_copies import AccountCopies, open_account
from providers_svc.services.uow import ProvidersUnitOfWork, UowFactory


@dataclass(frozen=True)
class NewAccount:
    provider: str
    name: str
    environment: str
    currencies: list[Any]
    credentials: Mapping[str, Any]
    settings: Mapping[str, Any]


@dataclass(frozen=True)
class AccountChanges:
    """What a PATCH gives; None: unchanged. ``credentials`` replaces field by field."""

    name: str | None = None
    currencies: list[Any] | None = None
    credentials: Mapping[str, Any] | None = None
    settings: Mapping[str, Any] | None = None


def account_not_found() -> ProblemError:
    return ProblemError(404, "not_found", "No such provider account")


def _invalid(error: AccountRuleError) -> ProblemError:
    return validation_error([FieldError(field=p.field, message=p.message) for p in error.problems])


def _seal(ring: KeyRing, credentials: Mapping[str, str]) -> str:
    return ring.encrypt(json.dumps(dict(credentials), sort_keys=True, separators=(",", ":")))


def credentials_of(ring: KeyRing, account: ProviderAccountRow) -> dict[str, str]:
    """The account's credentials in the clear, for the adapter that talks to its provider."""
    opened: dict[str, str] = json.loads(ring.decrypt(account.credentials_ciphertext))
    return opened


async def create_account(uow: UowFactory, ring: KeyRing, new: NewAccount, now: datetime) -> ProviderAccountRow:
    try:
        credentials = check_credentials(new.provider, new.credentials, environment=new.environment)
        currencies = check_currencies(new.provider, new.currencies)
        settings = check_settings(new.provider, new.settings)
        check_signature_key(new.provider, settings, credentials)
    except AccountRuleError as exc:
        raise _invalid(exc) from None
    row = ProviderAccountRow(
        id=new_id("pac"),
        provider=new.provider,
        name=new.name,
        environment=new.environment,
        currencies=currencies,
        settings=settings,
        credentials_ciphertext=_seal(ring, credentials),
        credentials_set=sorted(credentials),
        created_at=now,
        updated_at=now,
    )
    async with uow() as unit:
        await _refuse_shared_identity(unit, ring, new.provider, credentials, None)
        unit.accounts.add(row)
        await unit.commit()
    return row


# The credential a provider's callbacks find their account by: it must name one account only (Payme's
# key picks the account of a JSON-RPC call; Click's service_id the account of a Prepare/Complete).
_IDENTITY_FIELDS = {"payme": "key", "click": "service_id"}


async def _refuse_shared_identity(
    unit: ProvidersUnitOfWork, ring: KeyRing, provider: str, credentials: Mapping[str, str], account_id: str | None
) -> None:
    """409 when another account of ``provider`` already has the credential its callbacks are matched
    by. Under a lock per provider held to the commit, so two creations racing cannot both pass."""
    field = _IDENTITY_FIELDS.get(provider)
    if field is None or field not in credentials:
        return
    await unit.session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"provider_accounts:{provider}"}
    )
    for other in await unit.accounts.of_provider(provider):
        if other.id != account_id and credentials_of(ring, other).get(field) == credentials[field]:
            raise ProblemError(
                409,
                "credentials_in_use",
                f"Another {provider} account has this {field}: its callbacks could not tell the two apart",
            )


async def get_account(uow: UowFactory, account_id: str) -> ProviderAccountRow:
    async with uow() as unit:
        row = await unit.accounts.get(account_id)
    if row is None:
        raise account_not_found()
    return row


async def list_accounts(
    uow: UowFactory, paging: ListPaging, *, provider: str | None
) -> tuple[list[ProviderAccountRow], bool]:
    """One page of the accounts (of ``provider``), newest first, and whether more follow (beyond it, or
    before an ``ending_before`` cursor). A cursor must name an account (of any provider: a filter
    narrows the page, not where it starts), else 422."""
    async with uow() as unit:
        anchor = None
        if paging.cursor is not None:
            anchor = await unit.accounts.get(paging.cursor.object_id)
            if anchor is None:
                raise unknown_cursor(paging.cursor)
        rows = await unit.accounts.newest_first(
            limit=paging.fetch,
            offset=paging.offset,
            after=anchor if paging.starting_after is not None else None,
            before=anchor if paging.ending_before is not None else None,
            provider=provider,
        )
    return paging.page(rows)


async def update_account(
    uow: UowFactory, ring: KeyRing, account_id: str, changes: AccountChanges, now: datetime
) -> ProviderAccountRow:
    async with uow() as unit:
        row = await unit.accounts.get(account_id, for_update=True)
        if row is None:
            raise account_not_found()
        try:
            currencies = check_currencies(row.provider, changes.currencies) if changes.currencies is not None else None
            settings = check_settings(row.provider, changes.settings, row.settings) if changes.settings else None
            credentials = (
                check_credentials(row.provider, changes.credentials, partial=True, environment=row.environment)
                if changes.credentials
                else None
            )
            if changes.settings and "signature_formula" in changes.settings and settings is not None:
                # Only a change that names the formula must bring its key: an account stored before the
                # key was a credential of its own keeps working as it did (the secret; see adapters.octo).
                check_signature_key(row.provider, settings, {*row.credentials_set, *(credentials or {})})
        except AccountRuleError as exc:
            raise _invalid(exc) from None
        if changes.name is not None:
            row.name = changes.name
        if currencies is not None:
            row.currencies = currencies
        if settings is not None:
            row.settings = settings
        if credentials:
            merged = {**credentials_of(ring, row), **credentials}
            await _refuse_shared_identity(unit, ring, row.provider, merged, row.id)
            row.credentials_ciphertext = _seal(ring, merged)
            row.credentials_set = sorted(merged)
        row.updated_at = now
        await unit.commit()
    return row


async def delete_account(uow: UowFactory, account_id: str) -> None:
    async with uow() as unit:
        row = await unit.accounts.get(account_id, for_update=True)
        if row is None:
            raise account_not_found()
        # Under the row lock: an assignment being made waits (it locks the row too), then finds it gone.
        if await unit.accounts.is_assigned(account_id):
            raise ProblemError(409, "account_assigned", "The account is assigned to a tenant; unassign it first")
        await unit.accounts.delete(row)
        await unit.commit()


async def assign_account(
    uow: UowFactory, tenant_id: str, provider: str, account_id: str, *, livemode: bool, now: datetime
) -> tuple[TenantProviderAccountRow, ProviderAccountRow]:
    async with uow() as unit:
        # Locked as a deletion locks it: a concurrent delete either finds this assignment or goes first.
        account = await unit.accounts.get(account_id, for_update=True)
        if account is None:
            raise validation_error([FieldError(field="provider_account_id", message="is not a provider account")])
        try:
            check_assignment(account.provider, account.environment, provider, livemode=livemode)
        except AccountRuleError as exc:
            raise _invalid(exc) from None
        assignments = unit.assignments(tenant_id)
        await assignments.assign(provider, account_id, now)
        await unit.commit()
        current = dict((a.provider, (a, acc)) for a, acc in await assignments.all())
    return current[provider]


async def unassign_account(uow: UowFactory, tenant_id: str, provider: str) -> None:
    async with uow() as unit:
        if not await unit.assignments(tenant_id).unassign(provider):
            raise ProblemError(404, "not_found", f"No {provider} account is assigned to this tenant")
        await unit.commit()


async def tenant_accounts(uow: UowFactory, tenant_id: str) -> list[tuple[TenantProviderAccountRow, ProviderAccountRow]]:
    async with uow() as unit:
        return await unit.assignments(tenant_id).all()


# -- accounts as adapters and callbacks use them -------------------------------------------------------


def bound_account(ring: KeyRing, row: ProviderAccountRow) -> BoundAccount:
    return open_account(ring, {column.key: getattr(row, column.key) for column in ProviderAccountRow.__table__.c})


async def account_by_id(uow: UowFactory, ring: KeyRing, account_id: str) -> BoundAccount | None:
    """Any account, a simulator's included: the one a transaction was started with."""
    async with uow() as unit:
        row = await unit.accounts.get(account_id, simulators=True)
    return bound_account(ring, row) if row is not None else None


async def payment_account(
    uow: UowFactory, ring: KeyRing, tenant_id: str, provider: str, *, livemode: bool, simulators: bool
) -> BoundAccount | None:
    """The account a tenant's payment at ``provider`` is paid through (``payment_accounts``); None: not
    offered."""
    found = await payment_accounts(uow, ring, tenant_id, [provider], livemode=livemode, simulators=simulators)
    return found.get(provider)


@functools.cache
def _tenant_and_simulator_accounts() -> Select[Any]:
    # Plain columns for ``UnitOfWork.read_unlocked``: the tenant's assigned accounts and the simulators'
    # in one round trip, outside any transaction (every checkout page lists them).
    accounts = table_of(ProviderAccountRow)
    assigned = table_of(TenantProviderAccountRow)
    joined = accounts.outerjoin(
        assigned, and_(assigned.c.account_id == accounts.c.id, assigned.c.tenant_id == bindparam("tenant_id"))
    )
    return (
        select(*accounts.c, assigned.c.provider.label("assigned_for"))
        .select_from(joined)
        .where(or_(assigned.c.tenant_id.is_not(None), accounts.c.simulator.is_(True)))
    )


async def payment_accounts(
    uow: UowFactory,
    ring: KeyRing,
    tenant_id: str,
    providers: Sequence[str],
    *,
    livemode: bool,
    simulators: bool,
) -> dict[str, BoundAccount]:
    """By provider, the account a tenant's payment is paid through: the one assigned to the tenant, else
    (a test tenant only, ``simulators`` on) the provider's simulator account. A provider with neither is
    absent: it is not offered."""
    async with uow() as unit:
        rows = await unit.read_unlocked(_tenant_and_simulator_accounts(), {"tenant_id": tenant_id})
    assigned = {row["assigned_for"]: row for row in rows if row["assigned_for"] is not None}
    simulator_rows = {row["provider"]: row for row in rows if row["simulator"]}
    found: dict[str, BoundAccount] = {}
    for provider in providers:
        row = assigned.get(provider)
        if row is not None:
            account = open_account(ring, row)
            # An assignment is checked when made; a mode is fixed for life. Checked again: money is at stake.
            if account.test != livemode:
                found[provider] = account
        elif not livemode and simulators and provider in SIMULATED_PROVIDERS:
            simulator = simulator_rows.get(provider)
            found[provider] = (
                open_account(ring, simulator)
                if simulator is not None
                else await ensure_simulator_account(uow, ring, provider)
            )
    return found


def _digits(count: int) -> str:
    return str(secrets.randbelow(9 * 10 ** (count - 1)) + 10 ** (count - 1))


def _simulator_credentials(provider: str) -> dict[str, str]:
    """Fresh credentials for a provider's simulator account: random, so no published value opens it."""
    if provider == "payme":
        return {"merchant_id": secrets.token_hex(12), "key": secrets.token_urlsafe(30)}
    if provider == "click":
        return {
            "service_id": _digits(9),
            "merchant_id": _digits(9),
            "merchant_user_id": _digits(9),
            "secret_key": secrets.token_urlsafe(24),
        }
    if provider == "octo":
        return {"shop_id": _digits(9), "secret": secrets.token_urlsafe(24), "unique_key": secrets.token_urlsafe(24)}
    raise ValueError(f"{provider} has no simulator")


SIMULATED_PROVIDERS = ("payme", "click", "octo")


async def simulator_account(copies: AccountCopies, provider: str) -> BoundAccount:
    """The account ``provider``'s simulator plays against for test tenants with no account of their own:
    from the replica's copy of the provider's accounts (every simulated call asks), created on first use."""
    found = next((account for account in await copies.of(provider) if account.simulator), None)
    return found if found is not None else await ensure_simulator_account(copies.uow, copies.ring, provider)


async def ensure_simulator_account(uow: UowFactory, ring: KeyRing, provider: str) -> BoundAccount:
    """The simulator account of ``provider``, created unless it exists (by whichever replica is first;
    the others read it)."""
    async with uow() as unit:
        row = await unit.accounts.simulator(provider)
        if row is None:
            await _create_simulator_account(unit, ring, provider)
            await unit.commit()
            row = await unit.accounts.simulator(provider)
    assert row is not None, "just created, and never deleted"
    return bound_account(ring, row)


async def _create_simulator_account(unit: ProvidersUnitOfWork, ring: KeyRing, provider: str) -> None:
    now = utcnow()
    credentials = _simulator_credentials(provider)
    await unit.accounts.add_once(
        {
            "id": f"pac_simulator_{provider}",
            "provider": provider,
            "name": f"{provider.capitalize()} simulator",
            "environment": Environment.TEST.value,
            "currencies": sorted(PROVIDER_CURRENCIES[provider] or ()),
            "settings": settings_with_defaults(provider, {}),
            "credentials_ciphertext": _seal(ring, credentials),
            "credentials_set": sorted(credentials),
            "simulator": True,
            "created_at": now,
            "updated_at": now,
        }
    )
