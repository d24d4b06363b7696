"""The payments Unit of Work: repositories on one session; every emitted event also lands in the
tenant event log, in the same transaction as the outbox row."""

from __future__ import annotations

from billing_contracts.envelope import EventBase
from billing_runtime.uow import UnitOfWork

from payments_svc.db.models import TenantEvent


class PaymentsUnitOfWork(UnitOfWork):
    async def _before_commit(self, events: list[EventBase]) -> None:
        for event in events:
            if event.source != "payments":
                continue
            self.session.add(
                TenantEvent(
                    id=event.event_id,
                    tenant_id=event.tenant_id,
                    type=event.event_type,
                    data=event.model_dump(mode="json")["data"],
                    created_at=event.occurred_at,
                )
            )
        await self.session.flush()
