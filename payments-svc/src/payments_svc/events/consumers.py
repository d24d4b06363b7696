"""Consumers of bus events: provider outcomes move payments, and provider disputes and refund verdicts are
recorded on them (one queue, so a payment's outcome, disputes and refunds share one consumer's inbox and
dead letters); other services' tenant-facing events join the tenant's event log (all idempotent through the inbox)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from billing_contracts.events import (
    EndpointDisabledV1,
    ProviderDisputeUpdatedV1,
    ProviderPaymentAuthorizedV1,
    ProviderPaymentFailedV1,
    ProviderPaymentSucceededV1,
    ProviderRefundUpdatedV1,
)
from billing_runtime.bus import Message
from billing_runtime.consuming import parse_or_drop
from billing_runtime.metrics import Metrics

from payments_svc.services.disputes import apply_provider_dispute
from payments_svc.services.event_log import log_foreign_event
from payments_svc.services.lifecycle import LifecycleDeps, apply_provider_outcome
from payments_svc.services.parked_verdicts import replay_parked
from payments_svc.services.refund_verdicts import apply_provider_refund

PROVIDER_EVENTS_QUEUE = "payments.provider-events"
PROVIDER_EVENT_KEYS = [
    "providers.provider.payment.*.v1",
    "providers.provider.dispute.updated.v1",
    "providers.provider.refund.updated.v1",
]
# Events of other services that belong in the tenant's event log.
LOGGED_EVENTS_QUEUE = "payments.logged-events"
LOGGED_EVENT_KEYS = ["webhooks.endpoint.disabled.v1"]


def provider_outcome_handler(deps: LifecycleDeps, metrics: Metrics) -> Callable[[Message], Awaitable[None]]:
    async def handle(message: Message) -> None:
        event = parse_or_drop(message, metrics)
        if event is None:
            return
        if isinstance(event, ProviderDisputeUpdatedV1):
            done = await apply_provider_dispute(deps, event, message.body)
            metrics.events_consumed.labels(event.event_type, done).inc()
            return
        if isinstance(event, ProviderRefundUpdatedV1):
            done = await apply_provider_refund(deps, event, message.body)
            metrics.events_consumed.labels(event.event_type, done).inc()
            return
        if not isinstance(event, ProviderPaymentSucceededV1 | ProviderPaymentFailedV1 | ProviderPaymentAuthorizedV1):
            metrics.events_consumed.labels(event.event_type, "ignored").inc()
            return
        parked = await apply_provider_outcome(deps, event, message.body)
        metrics.events_consumed.labels(event.event_type, "applied").inc()
        if parked:
            # Refund verdicts that came first waited for this outcome (the sweeper replays any parked
            # after the outcome's read, and any missed here).
            await replay_parked(deps, payment_id=event.data.payment_id)

    return handle


def logged_event_handler(deps: LifecycleDeps, metrics: Metrics) -> Callable[[Message], Awaitable[None]]:
    async def handle(message: Message) -> None:
        event = parse_or_drop(message, metrics)
        if event is None:
            return
        if not isinstance(event, EndpointDisabledV1):
            metrics.events_consumed.labels(event.event_type, "ignored").inc()
            return
        logged = await log_foreign_event(deps.uow, event)
        metrics.events_consumed.labels(event.event_type, "logged" if logged else "duplicate").inc()

    return handle
