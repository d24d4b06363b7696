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
    """``async with uow: ...; await uow.commit()``; events emitted inside land in the outbox atomically.

    The repositories are built on use (they hold nothing but the session): a unit that only runs
    driver statements (``read_unlocked``, ``write_alone``, ``commit_unless_exists``), as the hot
    callbacks do, then never opens an ORM session at all."""

    @property
    def accounts(self) -> AccountRepository:
        return AccountRepository(self.session)

    @property
    def transactions(self) -> TransactionRepository:
        return TransactionRepository(self.session)

    @property
    def provider_events(self) -> ProviderEventRepository:
        return ProviderEventRepository(self.session)

    @property
    def sandbox_charges(self) -> SandboxChargeRepository:
        return SandboxChargeRepository(self)

    @property
    def stripe(self) -> StripeRepository:
        return StripeRepository(self.statements)

    @property
    def refunds(self) -> RefundRepository:
        return RefundRepository(self.session)

    def tenant_transactions(self, tenant_id: str) -> TenantTransactionRepository:
        return TenantTransactionRepository(self.session, tenant_id)

    def assignments(self, tenant_id: str) -> AssignmentRepository:
        return AssignmentRepository(self.session, tenant_id)


UowFactory = Callable[[], ProvidersUnitOfWork]
