"""Click accounts by ``service_id``, for the callbacks: each account's credentials are decrypted once per
version (``updated_at``) and kept on the application, not once per request.

Every request still lists the accounts (one small query outside any transaction), so an account
created, rotated or deleted is seen by the next callback on every replica."""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from billing_runtime.db import table_of
from billing_runtime.key_ring import KeyRing
from pydantic import ValidationError
from sqlalchemy import Select, select

from providers_svc.db.models import ProviderAccountRow
from providers_svc.domain.accounts import BoundAccount, Environment, settings_with_defaults
from providers_svc.protocols.click.credentials import ClickCredentials
from providers_svc.services.uow import UowFactory

log = logging.getLogger(__name__)

PROVIDER = "click"


@dataclass(frozen=True)
class ClickAccount:
    account: BoundAccount
    credentials: ClickCredentials


@functools.cache
def _click_accounts() -> Select[Any]:
    table = table_of(ProviderAccountRow)
    return select(*table.c).where(table.c.provider == PROVIDER)


def click_credentials(account: BoundAccount) -> ClickCredentials | None:
    """The account's credentials as Click's protocol takes them; None when they are not (ids not numeric)."""
    try:
        return ClickCredentials.model_validate(dict(account.credentials))
    except ValidationError:
        return None


@dataclass
class ClickAccounts:
    """Built once per application (``create_app``); the cache lives and dies with it."""

    uow: UowFactory
    ring: KeyRing
    _cache: dict[str, tuple[datetime, ClickAccount | None]] = field(default_factory=dict)

    async def by_service_id(self, service_id: int) -> list[ClickAccount]:
        """Every Click account (the simulator's included) with this ``service_id``: normally one."""
        async with self.uow() as uow:
            rows = await uow.read_unlocked(_click_accounts(), {})
        found: list[ClickAccount] = []
        seen: dict[str, tuple[datetime, ClickAccount | None]] = {}
        for row in rows:
            entry = self._cache.get(row["id"])
            if entry is None or entry[0] != row["updated_at"]:
                entry = (row["updated_at"], self._open(row))
            seen[row["id"]] = entry
            if entry[1] is not None and entry[1].credentials.service_id == service_id:
                found.append(entry[1])
        # Replaced whole: a deleted account leaves the cache with its row.
        self._cache = seen
        return found

    def _open(self, row: dict[str, Any]) -> ClickAccount | None:
        account = BoundAccount(
            id=row["id"],
            provider=PROVIDER,
            environment=Environment(row["environment"]),
            currencies=frozenset(row["currencies"]),
            settings=settings_with_defaults(PROVIDER, row["settings"]),
            credentials=json.loads(self.ring.decrypt(row["credentials_ciphertext"])),
            simulator=bool(row["simulator"]),
        )
        credentials = click_credentials(account)
        if credentials is None:
            # Stored as strings by the admin API; Click's ids are numbers. Never the values in the log.
            log.warning("click account %s has credentials Click cannot use (ids must be numbers)", account.id)
            return None
        return ClickAccount(account, credentials)
