"""Use cases of ``/v1/webhook-deliveries``: the log and manual retries."""

from __future__ import annotations

from dataclasses import dataclass

from billing_contracts.envelope import utcnow
from billing_runtime.paging import Cursor

from webhook_dispatcher.db.models import Attempt, Delivery, WebhookEvent
from webhook_dispatcher.domain.errors import InvalidState, NotFound
from webhook_dispatcher.services.deps import WebhookDeps


@dataclass(frozen=True)
class DeliveryDetail:
    delivery: Delivery
    event: WebhookEvent
    attempts: list[Attempt]


async def list_deliveries(
    deps: WebhookDeps,
    tenant_id: str,
    *,
    limit: int,
    offset: int,
    endpoint_id: str | None,
    status: str | None,
    event_type: str | None,
    event_id: str | None = None,
    cursor: Cursor | None = None,
) -> list[Delivery]:
    """Newest first; raises ``UnknownCursor`` for a cursor naming no delivery of the tenant."""
    async with deps.uow() as uow:
        return await uow.deliveries(tenant_id).list(
            limit=limit,
            offset=offset,
            endpoint_id=endpoint_id,
            status=status,
            event_type=event_type,
            event_id=event_id,
            cursor=cursor,
        )


async def get_delivery(deps: WebhookDeps, tenant_id: str, delivery_id: str) -> DeliveryDetail:
    async with deps.uow() as uow:
        repo = uow.deliveries(tenant_id)
        delivery = await repo.get(delivery_id)
        if delivery is None:
            raise NotFound("webhook delivery")
        event = await repo.event(delivery.event_id)
        attempts = await repo.attempts(delivery.id)
    assert event is not None
    return DeliveryDetail(delivery, event, attempts)


async def retry_delivery(deps: WebhookDeps, tenant_id: str, delivery_id: str) -> Delivery:
    """One attempt now, whatever the delivery's state (API.md, WHK-11). A delivery that ended gets one
    more attempt; a pending one has its next attempt brought forward, and if that manual attempt
    fails its automatic schedule resumes where it was (the manual attempt spends no step of it). While
    an attempt is in flight, the request is kept and one more attempt follows it at once unless it
    succeeds."""
    async with deps.uow() as uow:
        delivery = await uow.deliveries(tenant_id).get(delivery_id, for_update=True)
        if delivery is None:
            raise NotFound("webhook delivery")
        endpoint = await uow.endpoints(tenant_id).get(delivery.endpoint_id)
        if endpoint is None or not endpoint.enabled:
            raise InvalidState("endpoint_disabled", "The delivery's endpoint is disabled or deleted.")
        now = utcnow()
        leased = delivery.claimed_until is not None and delivery.claimed_until > now
        if delivery.claim_token is not None and leased:
            # Its worker records the attempt under its lease and would overwrite the schedule here.
            delivery.retry_requested = True
        else:
            if delivery.status == "pending" and not delivery.manual:
                delivery.resume_at = delivery.next_attempt_at
            elif delivery.status != "pending":
                delivery.resume_at = None
            delivery.status = "pending"
            delivery.manual = True
            delivery.next_attempt_at = now
        delivery.updated_at = now
        await uow.commit()
    deps.wake()
    return delivery
