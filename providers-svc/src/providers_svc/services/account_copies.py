"""The accounts of each provider as its callbacks need them on every request (Payme finds its account by
key, Click by ``service_id``), kept by each replica instead of read per call.

Reading the list on every call cost about a fifth of a Payme call's time in providers-svc (the Payme
and Click bench, docs/BENCHMARKS.md). The copy never outlives a change: every write to ``provider_accounts``
sends ``NOTIFY provider_accounts`` in its transaction (a trigger, so no writer can forget it), every
replica drops its copies when it arrives, and the replica that made a change through the admin API or
ChangePassword drops them after its commit. Copies are used only while that LISTEN connection is up (a
notification sent while it is down is lost; the listener drops every copy when it reconnects), and
never for longer than ``max_age``, which bounds a notification lost on a connection that broke without
a sign. With ``max_age`` 0 every call reads.

Decrypted credentials are kept apart from the list, by account version (``updated_at``): a list read
again does not decrypt an account that did not change."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from billing_runtime.db import table_of
from billing_runtime.key_ring import KeyRing
from sqlalchemy import Select, bindparam, select

from providers_svc.db.models import ProviderAccountRow
from providers_svc.domain.accounts import BoundAccount, Environment, settings_with_defaults
from providers_svc.services.uow import UowFactory

# The channel the trigger of migration ``provider_accounts_notify`` announces changes on.
CHANNEL = "provider_accounts"


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


class AccountCopies:
    """One per application (see the module). ``listening`` says whether changes can reach this replica
    now; without it every call reads."""

    def __init__(
        self,
        uow: UowFactory,
        ring: KeyRing,
        *,
        max_age: float,
        listening: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.uow = uow
        self.ring = ring
        self.max_age = max_age
        self.listening = listening
        self.clock = clock
        # provider → (when read, its accounts); dropped by every invalidation.
        self._lists: dict[str, tuple[float, list[BoundAccount]]] = {}
        # provider → account id → (updated_at, the opened account): kept across invalidations.
        self._opened: dict[str, dict[str, tuple[datetime, BoundAccount]]] = {}
        # Bumped by every invalidation: a read that began before one must not store what it read.
        self.epoch = 0
        self.reads = 0  # lists read from the database (tests)

    def invalidate(self) -> None:
        """Drop every list (a change was announced, made here, or notifications may have been missed)."""
        self._lists.clear()
        self.epoch += 1

    async def of(self, provider: str) -> list[BoundAccount]:
        """Every account of ``provider`` as it is now, the simulator's included."""
        cached = self._lists.get(provider)
        if cached is not None and self.max_age > 0 and self.listening() and self.clock() - cached[0] < self.max_age:
            return cached[1]
        epoch, read_at = self.epoch, self.clock()
        async with self.uow() as unit:
            rows = await unit.read_unlocked(_accounts_of_provider(), {"provider": provider})
        self.reads += 1
        known = self._opened.get(provider, {})
        opened: dict[str, tuple[datetime, BoundAccount]] = {}
        for row in rows:
            entry = known.get(row["id"])
            if entry is None or entry[0] != row["updated_at"]:
                entry = (row["updated_at"], open_account(self.ring, row))
            opened[row["id"]] = entry
        # Replaced whole: a deleted account leaves with its row.
        self._opened[provider] = opened
        accounts = [account for _, account in opened.values()]
        if epoch == self.epoch:
            self._lists[provider] = (read_at, accounts)
        return accounts

    async def by_id(self, provider: str, account_id: str) -> BoundAccount | None:
        """The account ``account_id`` of ``provider`` (a simulator's included): the one a transaction was
        started with, found in the provider's copy instead of read per callback or page."""
        return next((account for account in await self.of(provider) if account.id == account_id), None)
