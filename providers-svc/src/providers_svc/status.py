"""What providers-svc's ``GET /internal/status`` shows (``billing_runtime.status``): the queue of
refund requests, its outbox, its processes and the refund retrier's last pass."""

from __future__ import annotations

from billing_runtime.plumbing import Plumbing
from billing_runtime.status import StatusSource

from providers_svc.db.models import heartbeats, outbox
from providers_svc.events.consumers import REFUND_REQUEST_KEYS, REFUND_REQUESTS_QUEUE
from providers_svc.services.refunds import REFUND_RETRIES
from providers_svc.settings import Settings


def status_source(settings: Settings, plumbing: Plumbing) -> StatusSource:
    return StatusSource(
        service="providers",
        plumbing=plumbing,
        bus_url=settings.bus_url,
        queues={REFUND_REQUESTS_QUEUE: REFUND_REQUEST_KEYS},
        heartbeats=heartbeats,
        outbox=outbox,
        janitors=(REFUND_RETRIES,),
        heartbeat_interval=settings.heartbeat_interval,
    )
