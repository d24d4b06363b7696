"""The dispatcher's unit of work: the runtime's, plus the repositories of one tenant on demand."""

from __future__ import annotations

from billing_runtime.uow import UnitOfWork

from webhook_dispatcher.db.repositories import DeliveryRepository, EndpointRepository


class WebhooksUnitOfWork(UnitOfWork):
    def endpoints(self, tenant_id: str) -> EndpointRepository:
        return EndpointRepository(self.session, tenant_id)

    def deliveries(self, tenant_id: str) -> DeliveryRepository:
        return DeliveryRepository(self.session, tenant_id)
