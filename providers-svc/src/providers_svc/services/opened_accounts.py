"""The accounts of one provider as its callbacks need them on every request (Payme finds its account by
key, Click by ``service_id``): read on each request, so an account added, changed or deleted on any
replica is seen by the next callback, but decrypted only when it changed.

Each account is opened again only when its ``updated_at`` moved (every change of an account stamps it),
so a callback costs one small query, not one decryption per account."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from billing_runtime.db import table_of
from billing_runtime.key_ring import KeyRing
from sqlalchemy import Select, bindparam, select

from providers_svc.db.models import ProviderAccountRow
from providers_svc.domain.accounts import BoundAccount, Environment, settings_with_defaults
from providers_svc.services.uow import UowFactory


@functools.cache
def _accounts_of_provider() -> Select[Any]:
    # Plain columns for ``UnitOfWork.read_unlocked``: one round trip, outside any transaction.
    table = table_of(ProviderAccountRow)
    return select(*table.c).where(table.c.provider == bindparam("provider"))


def open_account(ring: KeyRing, row: Mapping[str, Any]) -> BoundAccount:
    return BoundAccount(
        id=row["id"],
        provider=row["provider"],
        environment=Environment(row["environment"]),
        currencies=frozenset(row["currencies"]),
        settings=settings_with_defaults(row["provider"], row["settings"]),
        credentials=json.loads(ring.decrypt(row["credentials_ciphertext"])),
        simulator=bool(row["simulator"]),
    )


@dataclass
class OpenedAccounts:
    """One per provider per application; ``_opened``: account id → (``updated_at``, the opened account)."""

    uow: UowFactory
    ring: KeyRing
    provider: str
    _opened: dict[str, tuple[datetime, BoundAccount]] = field(default_factory=dict)

    async def all(self) -> list[BoundAccount]:
        """Every account of the provider as it is now, the simulator's included."""
        async with self.uow() as unit:
            rows = await unit.read_unlocked(_accounts_of_provider(), {"provider": self.provider})
        opened: dict[str, tuple[datetime, BoundAccount]] = {}
        for row in rows:
            cached = self._opened.get(row["id"])
            if cached is None or cached[0] != row["updated_at"]:
                cached = (row["updated_at"], open_account(self.ring, row))
            opened[row["id"]] = cached
        # Replaced whole: a deleted account leaves the cache with its row.
        self._opened = opened
        return [account for _, account in opened.values()]
