"""What the use cases need, built once by ``create_app``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from webhook_dispatcher.crypto import SecretBox
from webhook_dispatcher.domain.addresses import AddressPolicy
from webhook_dispatcher.metrics import WebhookMetrics
from webhook_dispatcher.services.attempts import Intake
from webhook_dispatcher.services.endpoint_copies import EndpointCopies
from webhook_dispatcher.services.uow import WebhooksUnitOfWork


@dataclass(frozen=True)
class WebhookDeps:
    uow: Callable[[], WebhooksUnitOfWork]
    box: SecretBox
    allow_http: bool
    # IP-literal URLs the policy refuses are refused at creation (the connect-time guard still
    # decides for names, whose addresses can change).
    address_policy: AddressPolicy
    rotation_grace: timedelta
    max_endpoints_per_tenant: int
    replay_batch_size: int
    # Called after a commit that made deliveries due: wakes this process's dispatcher and every
    # worker process (NOTIFY).
    wake: Callable[[], None]
    metrics: WebhookMetrics
    # The worker's copies of the tenants' endpoints for the event consumer (max_age 0: read per batch).
    endpoints: EndpointCopies
    # The worker's dispatcher, which takes the deliveries it can send at once as they are stored; None
    # in a process that runs no dispatcher (the API role).
    intake: Intake | None = None
