"""Which source makes an account's statement (the account's provider), and the 404 for none."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime

from billing_contracts.envelope import utcnow
from billing_contracts.statements import StatementRecord
from billing_runtime.key_ring import KeyRing
from billing_runtime.problems import ProblemError

from providers_svc.adapters.base import RefundStatements
from providers_svc.adapters.stripe import StripeProvider
from providers_svc.services.accounts import account_by_id
from providers_svc.services.directory import ProviderDirectory
from providers_svc.services.statements.by_status import status_records
from providers_svc.services.statements.ledgers import SANDBOX, payme_records, sandbox_records
from providers_svc.services.statements.period import Period
from providers_svc.services.statements.refund_lines import (
    asked_refund_records,
    payme_refund_records,
    sandbox_refund_records,
)
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
            payments = sandbox_records(self.uow, period, self.clock())
            return Statement(SANDBOX, _chain(payments, sandbox_refund_records(self.uow, period)))
        account = await account_by_id(self.uow, self.ring, account_id)
        provider = self.directory.registry.account_provider(account.provider) if account is not None else None
        if account is None or provider is None:
            raise _not_found()
        if account.provider == "payme":
            field = account.settings["account_field"]
            return Statement(
                "payme",
                _chain(
                    payme_records(self.uow, account.id, field, period),
                    payme_refund_records(self.uow, account.id, period),
                ),
            )
        if isinstance(provider, StripeProvider):
            return Statement("stripe", stripe_records(provider.bound(account).api, account.id, period))
        adapter = provider.bind(account)
        lines = status_records(self.uow, adapter, account.id, period)
        if isinstance(adapter, RefundStatements):
            lines = _chain(lines, asked_refund_records(self.uow, adapter, account.provider, account.id, period))
        return Statement(account.provider, lines)


async def _chain(*parts: AsyncIterator[StatementRecord]) -> AsyncIterator[StatementRecord]:
    """The payments' lines, then the refunds' (each part read only when the one before has ended)."""
    for part in parts:
        async for record in part:
            yield record


def _not_found() -> ProblemError:
    return ProblemError(404, "account_not_found", "No such provider account")
