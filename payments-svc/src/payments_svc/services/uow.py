"""The payments Unit of Work: repositories on one session; every emitted public event also lands in
the tenant event log, in the same transaction as the outbox row."""

from __future__ import annotations

from billing_contracts.envelope import EventBase
from billing_contracts.events import PAYMENT_EVENTS, REFUND_EVENTS, TENANT_DISPUTE_EVENTS
from billing_runtime.db import table_of
from billing_runtime.uow import UnitOfWork
from billing_runtime.writes import InsertRows

from payments_svc.db.models import TenantEvent


def event_log_row(event: EventBase) -> dict[str, object]:
    """The tenant event-log row of ``event`` (its ``txid`` is the column's default)."""
    return {
        "id": event.event_id,
        "tenant_id": event.tenant_id,
        "livemode": event.livemode,
        "type": event.event_type,
        "data": event.model_dump(mode="json")["data"],
        "created_at": event.occurred_at,
    }


# The events this service publishes for tenants (webhooks), which its event log keeps too.
_TENANT_EVENTS = (*PAYMENT_EVENTS, *TENANT_DISPUTE_EVENTS, *REFUND_EVENTS)


class PaymentsUnitOfWork(UnitOfWork):
    async def _before_commit(self, events: list[EventBase]) -> None:
        # Internal events (anomalies) go through the outbox only: the log is the tenant's.
        rows = [event_log_row(event) for event in events if isinstance(event, _TENANT_EVENTS)]
        if rows:
            # One INSERT for all, so ``seq`` follows the emit order.
            self.write(InsertRows(table_of(TenantEvent), rows))
