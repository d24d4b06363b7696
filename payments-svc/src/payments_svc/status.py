"""What payments-svc's ``GET /internal/status`` shows (``billing_runtime.status``): its two queues,
its outbox, its processes and its sweepers' last passes."""

from __future__ import annotations

from billing_runtime.plumbing import Plumbing
from billing_runtime.status import StatusSource

from payments_svc.db.models import heartbeats, outbox
from payments_svc.events.consumers import (
    LOGGED_EVENT_KEYS,
    LOGGED_EVENTS_QUEUE,
    PROVIDER_EVENT_KEYS,
    PROVIDER_EVENTS_QUEUE,
)
from payments_svc.settings import Settings
from payments_svc.sweeper import EXPIRY, IDEMPOTENCY_PRUNING


def status_source(settings: Settings, plumbing: Plumbing) -> StatusSource:
    return StatusSource(
        service="payments",
        plumbing=plumbing,
        bus_url=settings.bus_url,
        queues={PROVIDER_EVENTS_QUEUE: PROVIDER_EVENT_KEYS, LOGGED_EVENTS_QUEUE: LOGGED_EVENT_KEYS},
        heartbeats=heartbeats,
        outbox=outbox,
        janitors=(EXPIRY, IDEMPOTENCY_PRUNING),
        heartbeat_interval=settings.heartbeat_interval,
    )
