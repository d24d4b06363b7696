"""Which source makes an account's statement (the account's provider), and the 404 for none."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime

from billing_contracts.envelope import utcnow
from billing_contracts.statements import StatementRecord
from billing_runtime.key_ring import KeyRing
from billing_runtime.problems import ProblemError

from providers_svc.adapters.stripe import StripeProvider
from providers_svc.services.accounts import account_by_id
from providers_svc.services.directory import ProviderDirectory
from providers_svc.services.statements.by_status import status_records
from providers_svc.services.statements.ledgers import SANDBOX, payme_records, sandbox_records
from providers_svc.services.statements.period import Period
from providers_svc.services.statements.stripe_lists import stripe_records
from providers_svc.services.uow import UowFactory


@dataclass(frozen=True)
class Statement:
    provider: str
    records: AsyncIterator[StatementRecord]


@dataclass(frozen=True)
class Statements:
    uow: UowFactory
    ring: KeyRing
    directory: ProviderDirectory
    clock: Callable[[], datetime] = utcnow

    async def open(self, account_id: str, period: Period) -> Statement:
        """The account's records of ``period``, not yet read; 404 ``account_not_found``."""
        if account_id == SANDBOX:
            if self.directory.registry.get(SANDBOX) is None:
                raise _not_found()
            return Statement(SANDBOX, sandbox_records(self.uow, period, self.clock()))
        account = await account_by_id(self.uow, self.ring, account_id)
        provider = self.directory.registry.account_provider(account.provider) if account is not None else None
        if account is None or provider is None:
            raise _not_found()
        if account.provider == "payme":
            field = account.settings["account_field"]
            return Statement("payme", payme_records(self.uow, account.id, field, period))
        if isinstance(provider, StripeProvider):
            return Statement("stripe", stripe_records(provider.bound(account).api, account.id, period))
        return Statement(account.provider, status_records(self.uow, provider.bind(account), account.id, period))


def _not_found() -> ProblemError:
    return ProblemError(404, "account_not_found", "No such provider account")
