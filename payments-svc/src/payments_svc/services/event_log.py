"""The tenant's event log (``GET /v1/events``) also carries what other services decide about the
tenant's integration, such as the webhook dispatcher disabling an endpoint: logged once per event,
under the publisher's event id, so the log and the webhooks name the same event."""

from __future__ import annotations

from collections.abc import Callable

from billing_contracts.envelope import EventBase
from billing_runtime.inbox import inbox_row
from billing_runtime.writes import InsertRows

from payments_svc.db.models import TenantEvent, inbox
from payments_svc.services.uow import PaymentsUnitOfWork

LOGGED_EVENTS_CONSUMER = "payments.logged-events"


async def log_foreign_event(uow: Callable[[], PaymentsUnitOfWork], event: EventBase) -> bool:
    """Append ``event`` to its tenant's log unless this consumer saw it before; True when appended."""
    row = {
        "id": event.event_id,
        "tenant_id": event.tenant_id,
        "type": event.event_type,
        "data": event.model_dump(mode="json")["data"],
        "created_at": event.occurred_at,
    }
    async with uow() as unit:
        unit.write(InsertRows(TenantEvent.__table__, [row]))
        return await unit.commit_unless_exists(inbox_row(inbox, LOGGED_EVENTS_CONSUMER, event.event_id))
