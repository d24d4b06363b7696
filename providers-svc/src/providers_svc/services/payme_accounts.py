"""The Payme accounts that share ``POST /billing/payme`` (the simulator's included), as the endpoint needs them
on every request, and ChangePassword, which replaces the key of one of them.

Every request must see every account as it is now (an account added, a key changed by ChangePassword on
another replica), so the accounts are read on each request: one round trip outside any transaction. What
is not redone is opening each account's credentials: an account is decrypted again only when its
``updated_at`` moved (every change of an account stamps it)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from billing_runtime.key_ring import KeyRing

from providers_svc.db.payme import accounts_query
from providers_svc.domain.accounts import AccountRuleError, BoundAccount, Environment, check_credentials
from providers_svc.domain.accounts import settings_with_defaults as with_defaults
from providers_svc.services.accounts import credentials_of
from providers_svc.services.uow import UowFactory

PROVIDER = "payme"


class KeyNotAccepted(Exception):
    """ChangePassword gave a key we cannot store: malformed, or another Payme account's."""


@dataclass
class PaymeAccounts:
    """One per application. ``_opened``: account id → (``updated_at``, the account with its credentials)."""

    uow: UowFactory
    ring: KeyRing
    _opened: dict[str, tuple[datetime, BoundAccount]] = field(default_factory=dict)

    async def all(self) -> list[BoundAccount]:
        async with self.uow() as unit:
            rows = await unit.read_unlocked(accounts_query(), {"provider": PROVIDER})
        opened: dict[str, tuple[datetime, BoundAccount]] = {}
        for row in rows:
            cached = self._opened.get(row["id"])
            if cached is not None and cached[0] == row["updated_at"]:
                opened[row["id"]] = cached
            else:
                opened[row["id"]] = (row["updated_at"], self._open(row))
        # Replaced whole: a deleted account leaves the cache with its row.
        self._opened = opened
        return [account for _, account in opened.values()]

    def _open(self, row: dict[str, Any]) -> BoundAccount:
        credentials: dict[str, str] = json.loads(self.ring.decrypt(row["credentials_ciphertext"]))
        return BoundAccount(
            id=row["id"],
            provider=row["provider"],
            environment=Environment(row["environment"]),
            currencies=frozenset(row["currencies"]),
            settings=with_defaults(row["provider"], row["settings"]),
            credentials=credentials,
            simulator=bool(row["simulator"]),
        )

    async def change_key(self, account_id: str, key: str, others: list[BoundAccount], now: datetime) -> None:
        """Store ``key`` as the account's Payme key, sealed with the key ring as an admin update would.
        ``others``: the other Payme accounts; their keys must stay distinct (the key picks the account)."""
        try:
            check_credentials(PROVIDER, {"key": key}, partial=True)
        except AccountRuleError:
            raise KeyNotAccepted("malformed key") from None
        if any(a.id != account_id and a.credentials.get("key") == key for a in others):
            raise KeyNotAccepted("the key of another account")
        async with self.uow() as unit:
            row = await unit.accounts.get(account_id, for_update=True, simulators=True)
            if row is None:
                raise KeyNotAccepted("the account is gone")
            merged = {**credentials_of(self.ring, row), "key": key}
            row.credentials_ciphertext = self.ring.encrypt(json.dumps(merged, sort_keys=True, separators=(",", ":")))
            row.credentials_set = sorted(merged)
            row.updated_at = now
            await unit.commit()
