"""The service's unit of work: billing_runtime's UnitOfWork with this service's repositories."""

from __future__ import annotations

from collections.abc import Callable

from billing_runtime.uow import UnitOfWork

from providers_svc.db.accounts import AccountRepository, AssignmentRepository
from providers_svc.db.refunds import RefundRepository
from providers_svc.db.repositories import (
    ProviderEventRepository,
    TenantTransactionRepository,
    TransactionRepository,
)
from providers_svc.db.sandbox_charges import SandboxChargeRepository
from providers_svc.db.stripe import StripeRepository


class ProvidersUnitOfWork(UnitOfWork):
    """``async with uow: ...; await uow.commit()``; events emitted inside land in the outbox atomically."""

    transactions: TransactionRepository
    provider_events: ProviderEventRepository
    sandbox_charges: SandboxChargeRepository
    accounts: AccountRepository
    stripe: StripeRepository
    refunds: RefundRepository

    def _open(self) -> None:
        self.accounts = AccountRepository(self.session)
        self.transactions = TransactionRepository(self.session)
        self.provider_events = ProviderEventRepository(self.session)
        self.sandbox_charges = SandboxChargeRepository(self)
        self.stripe = StripeRepository(self.session)
        self.refunds = RefundRepository(self.session)

    def tenant_transactions(self, tenant_id: str) -> TenantTransactionRepository:
        return TenantTransactionRepository(self.session, tenant_id)

    def assignments(self, tenant_id: str) -> AssignmentRepository:
        return AssignmentRepository(self.session, tenant_id)


UowFactory = Callable[[], ProvidersUnitOfWork]
