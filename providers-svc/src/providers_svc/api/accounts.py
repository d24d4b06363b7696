"""The admin API of provider accounts (API.md "Provider accounts"). Only the gateway calls it, after
checking the admin token; a tenant's routes carry that tenant (and its mode) in the internal token."""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from billing_contracts.envelope import utcnow
from billing_runtime.internal_auth import caller_key
from billing_runtime.paging import list_paging
from billing_runtime.problems import ProblemError, read_json_object
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from providers_svc.api.responses import ProviderAccount, ProviderAccountAssignment
from providers_svc.api.schemas import parse
from providers_svc.db.models import ProviderAccountRow, TenantProviderAccountRow
from providers_svc.domain.accounts import PROVIDERS
from providers_svc.keys import account_copies_key, key_ring_key, uow_factory_key
from providers_svc.services import accounts
from providers_svc.services.accounts import AccountChanges, NewAccount

Provider = Literal["payme", "click", "octo", "stripe"]


class AccountCreate(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    provider: Provider
    name: StrictStr = Field(min_length=1, max_length=128)
    environment: Literal["test", "production"]
    currencies: list[Any] = Field(min_length=1, max_length=20)
    credentials: dict[str, Any]
    settings: dict[str, Any] = Field(default_factory=dict)


class AccountUpdate(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    name: StrictStr | None = Field(default=None, min_length=1, max_length=128)
    currencies: list[Any] | None = Field(default=None, min_length=1, max_length=20)
    credentials: dict[str, Any] | None = None
    settings: dict[str, Any] | None = None


class AccountsQuery(BaseModel):
    """The list's filter; its paging (``limit``, ``offset``, the cursors) is ``billing_runtime.paging``'s."""

    model_config = ConfigDict(defer_build=True, extra="ignore", frozen=True)

    provider: Provider | None = None


class Assignment(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    provider_account_id: StrictStr = Field(min_length=1, max_length=64)


def _account(row: ProviderAccountRow) -> ProviderAccount:
    return ProviderAccount(
        id=row.id,
        provider=row.provider,
        name=row.name,
        environment=row.environment,
        currencies=row.currencies,
        settings=row.settings,
        credentials_set=row.credentials_set,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def account_json(row: ProviderAccountRow) -> dict[str, Any]:
    """The account as API.md shows it: which credentials are set, never their values."""
    return _account(row).model_dump(mode="json")


def assignment_json(assignment: TenantProviderAccountRow, account: ProviderAccountRow) -> dict[str, Any]:
    return ProviderAccountAssignment(
        tenant_id=assignment.tenant_id,
        provider=assignment.provider,
        provider_account=_account(account),
        assigned_at=assignment.assigned_at,
    ).model_dump(mode="json")


def _from_gateway(request: web.Request) -> None:
    # payments-svc holds a key this service accepts too; only the gateway administers accounts.
    if request[caller_key].service != "gateway":
        raise ProblemError(403, "forbidden", "Provider accounts are administered through the gateway only")


def _tenant(request: web.Request) -> tuple[str, bool]:
    _from_gateway(request)
    caller = request[caller_key]
    tenant_id = request.match_info["tenant_id"]
    if caller.tenant_id != tenant_id:
        raise ProblemError(403, "forbidden", "The internal credentials name another tenant")
    return tenant_id, caller.livemode


def _provider(request: web.Request) -> str:
    provider = request.match_info["provider"]
    if provider not in PROVIDERS:
        raise ProblemError(404, "not_found", f"No such provider: one of {', '.join(PROVIDERS)}")
    return provider


async def create(request: web.Request) -> web.Response:
    _from_gateway(request)
    body = parse(AccountCreate, await read_json_object(request))
    row = await accounts.create_account(
        request.app[uow_factory_key],
        request.app[key_ring_key],
        NewAccount(body.provider, body.name, body.environment, body.currencies, body.credentials, body.settings),
        utcnow(),
    )
    # This replica's copies now; the others on the change's notification (services/account_copies.py).
    request.app[account_copies_key].invalidate()
    return web.json_response(account_json(row), status=201)


async def list_all(request: web.Request) -> web.Response:
    _from_gateway(request)
    paging = list_paging(request.query, what="provider account")
    query = parse(AccountsQuery, dict(request.query))
    rows, has_more = await accounts.list_accounts(request.app[uow_factory_key], paging, provider=query.provider)
    return web.json_response(
        {
            "object": "list",
            "data": [account_json(r) for r in rows],
            "limit": paging.limit,
            "offset": paging.offset,
            "has_more": has_more,
        }
    )


async def retrieve(request: web.Request) -> web.Response:
    _from_gateway(request)
    row = await accounts.get_account(request.app[uow_factory_key], request.match_info["account_id"])
    return web.json_response(account_json(row))


async def update(request: web.Request) -> web.Response:
    _from_gateway(request)
    body = parse(AccountUpdate, await read_json_object(request))
    row = await accounts.update_account(
        request.app[uow_factory_key],
        request.app[key_ring_key],
        request.match_info["account_id"],
        AccountChanges(body.name, body.currencies, body.credentials, body.settings),
        utcnow(),
    )
    # This replica's copies now; the others on the change's notification (services/account_copies.py).
    request.app[account_copies_key].invalidate()
    return web.json_response(account_json(row))


async def delete(request: web.Request) -> web.Response:
    _from_gateway(request)
    await accounts.delete_account(request.app[uow_factory_key], request.match_info["account_id"])
    # This replica's copies now; the others on the change's notification (services/account_copies.py).
    request.app[account_copies_key].invalidate()
    return web.json_response({"id": request.match_info["account_id"], "object": "provider_account", "deleted": True})


async def assign(request: web.Request) -> web.Response:
    tenant_id, livemode = _tenant(request)
    provider = _provider(request)
    body = parse(Assignment, await read_json_object(request))
    assignment, account = await accounts.assign_account(
        request.app[uow_factory_key], tenant_id, provider, body.provider_account_id, livemode=livemode, now=utcnow()
    )
    return web.json_response(assignment_json(assignment, account))


async def unassign(request: web.Request) -> web.Response:
    tenant_id, _ = _tenant(request)
    provider = _provider(request)
    await accounts.unassign_account(request.app[uow_factory_key], tenant_id, provider)
    return web.json_response({"object": "provider_account_assignment", "provider": provider, "deleted": True})


async def list_for_tenant(request: web.Request) -> web.Response:
    tenant_id, _ = _tenant(request)
    rows = await accounts.tenant_accounts(request.app[uow_factory_key], tenant_id)
    return web.json_response({"object": "list", "data": [assignment_json(a, acc) for a, acc in rows]})


def add_account_routes(app: web.Application) -> None:
    app.router.add_post("/admin/provider-accounts", create)
    app.router.add_get("/admin/provider-accounts", list_all)
    app.router.add_get("/admin/provider-accounts/{account_id}", retrieve)
    app.router.add_patch("/admin/provider-accounts/{account_id}", update)
    app.router.add_delete("/admin/provider-accounts/{account_id}", delete)
    app.router.add_get("/admin/tenants/{tenant_id}/provider-accounts", list_for_tenant)
    app.router.add_put("/admin/tenants/{tenant_id}/provider-accounts/{provider}", assign)
    app.router.add_delete("/admin/tenants/{tenant_id}/provider-accounts/{provider}", unassign)
