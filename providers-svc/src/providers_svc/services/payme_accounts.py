"""The Payme accounts that share ``POST /billing/payme`` (the simulator's included), as the endpoint needs them
on every request, and ChangePassword, which replaces the key of one of them.

Every request must see every account as it is now (an account added, a key changed by ChangePassword on
another replica): ``AccountCopies`` keeps them until a change is announced."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from billing_runtime.key_ring import KeyRing

from providers_svc.domain.accounts import AccountRuleError, BoundAccount, check_credentials
from providers_svc.services.account_copies import AccountCopies
from providers_svc.services.accounts import credentials_of
from providers_svc.services.uow import UowFactory

PROVIDER = "payme"


class KeyNotAccepted(Exception):
    """ChangePassword gave a key we cannot store: malformed, or another Payme account's."""


@dataclass
class PaymeAccounts:
    """One per application: the Payme accounts (``AccountCopies``) and ChangePassword."""

    uow: UowFactory
    ring: KeyRing
    copies: AccountCopies

    async def all(self) -> list[BoundAccount]:
        return await self.copies.of(PROVIDER)

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
        # Payme's next call comes with the new key: this replica must not wait for the notification.
        self.copies.invalidate()
