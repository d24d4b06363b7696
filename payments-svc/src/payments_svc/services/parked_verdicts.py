"""Replaying the refund verdicts parked because their payment was not captured yet
(``services/refund_verdicts.py``): right after a payment's success is applied (for that payment), and
by the worker's sweeper every pass (whatever was missed: a crash between the two, and the verdicts of
payments that ended without money, which then become the anomaly they always were)."""

from __future__ import annotations

import logging

from billing_contracts import parse_event
from billing_contracts.events import ProviderRefundUpdatedV1

from payments_svc.db.parked_verdicts import due
from payments_svc.services.lifecycle import LifecycleDeps
from payments_svc.services.refund_verdicts import apply_provider_refund

log = logging.getLogger(__name__)


async def replay_parked(deps: LifecycleDeps, *, payment_id: str | None = None, limit: int = 100) -> int:
    """Apply the parked verdicts whose payment settled (of ``payment_id`` only, when given), each in its
    own transaction and exactly once; how many were applied."""
    async with deps.uow() as uow:
        bodies = await due(uow, payment_id=payment_id, limit=limit)
    applied = 0
    for body in bodies:
        event = parse_event(body.encode())
        assert isinstance(event, ProviderRefundUpdatedV1)
        done = await apply_provider_refund(deps, event, body.encode(), parked=True)
        log.info("parked refund verdict %s on payment %s: %s", event.event_id, event.data.payment_id, done)
        applied += done != "duplicate"
    return applied
