"""reconciliation-svc's unit of work: the runtime's. The service publishes no event (nothing relays its
outbox), so emitting one is a wiring mistake, refused at once rather than left in the table."""

from __future__ import annotations

from billing_contracts.envelope import EventBase
from billing_runtime.uow import UnitOfWork


class ReconUnitOfWork(UnitOfWork):
    def emit(self, event: EventBase) -> None:
        raise RuntimeError(f"reconciliation-svc publishes no events (tried {event.event_type})")
