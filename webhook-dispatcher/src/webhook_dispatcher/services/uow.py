"""The dispatcher's unit of work: the runtime's, plus the repositories of one tenant on demand."""

from __future__ import annotations

from billing_runtime.uow import UnitOfWork
from sqlalchemy.ext.asyncio import AsyncEngine

from webhook_dispatcher.db.repositories import DeliveryRepository, EndpointRepository


class WebhooksUnitOfWork(UnitOfWork):
    def endpoints(self, tenant_id: str) -> EndpointRepository:
        return EndpointRepository(self.session, tenant_id)

    def deliveries(self, tenant_id: str) -> DeliveryRepository:
        return DeliveryRepository(self.session, tenant_id)

    @property
    def bound_engine(self) -> AsyncEngine:
        """The engine for the statements that run outside the unit's transaction and commit
        themselves (the hot paths: ingest, claim, record). The plumbing always binds the sessions to
        one engine; a unit without one is a wiring mistake, refused here by name."""
        engine = self.engine
        if engine is None:
            raise RuntimeError("the unit of work's sessions are not bound to an engine")
        return engine
