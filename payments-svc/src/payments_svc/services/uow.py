"""The payments Unit of Work: repositories on one session; every emitted event also lands in the
tenant event log, in the same transaction as the outbox row."""

from __future__ import annotations

from billing_contracts.envelope import EventBase
from billing_runtime.uow import UnitOfWork
from billing_runtime.writes import InsertRows

from payments_svc.db.models import TenantEvent


class PaymentsUnitOfWork(UnitOfWork):
    async def _before_commit(self, events: list[EventBase]) -> None:
        rows = [
            {
                "id": event.event_id,
                "tenant_id": event.tenant_id,
                "type": event.event_type,
                "data": event.model_dump(mode="json")["data"],
                "created_at": event.occurred_at,
            }
            for event in events
            if event.source == "payments"
        ]
        if rows:
            # One INSERT for all, so ``seq`` follows the emit order.
            self.write(InsertRows(TenantEvent.__table__, rows))
