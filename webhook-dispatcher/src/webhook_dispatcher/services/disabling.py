"""Giving up on endpoints: one the recorder finds answering 410, or failing for too long, is disabled
with its pending deliveries and the tenant is told (WHK-6); deliveries stored for an endpoint already
disabled or deleted (by an ingest that raced the disabling) are given up when a claim comes across them.

Both fail pending deliveries with the reason the endpoint's state gives (``domain/giving_up.py``), and
both lock the endpoint before its deliveries, the order every writer uses.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from billing_contracts.events import DisabledEndpoint, EndpointDisabledData, EndpointDisabledV1
from billing_runtime.db import UTCDateTime, table_of
from billing_runtime.prepared import InTransaction
from sqlalchemy import String, Update, any_, bindparam, update
from sqlalchemy.dialects.postgresql import ARRAY

from webhook_dispatcher.db.models import Delivery, Endpoint
from webhook_dispatcher.domain.giving_up import given_up_label, given_up_reason
from webhook_dispatcher.services.fanout import fan_out
from webhook_dispatcher.services.uow import WebhooksUnitOfWork

log = logging.getLogger(__name__)


async def disable_endpoint(uow: WebhooksUnitOfWork, endpoint: Endpoint, reason: str, now: datetime) -> int:
    """Disable the endpoint, give up its pending deliveries, and tell the tenant: ``endpoint.disabled``
    to its other endpoints and, through the outbox, to its event log (one event, one id), all in the
    caller's transaction (WHK-6). Returns how many pending deliveries were given up."""
    log.warning("disabling webhook endpoint %s (%s)", endpoint.id, reason)
    endpoint.enabled = False
    endpoint.disabled_reason = reason
    endpoint.updated_at = now
    given_up = await uow.endpoints(endpoint.tenant_id).fail_pending(endpoint, now)
    event = EndpointDisabledV1(
        tenant_id=endpoint.tenant_id,
        livemode=endpoint.livemode,
        occurred_at=now,
        data=EndpointDisabledData(
            endpoint=DisabledEndpoint(
                id=endpoint.id,
                url=endpoint.url,
                description=endpoint.description,
                disabled_reason=reason,
                failing_since=endpoint.failing_since,
                disabled_at=now,
            )
        ),
    )
    uow.emit(event)
    await fan_out(
        uow,
        tenant_id=endpoint.tenant_id,
        event_id=event.event_id,
        event_type=event.event_type,
        created_at=now,
        livemode=endpoint.livemode,
        data=event.model_dump(mode="json")["data"],
        exclude=endpoint.id,
    )
    return given_up


def _give_up() -> Update:
    """Fail the unleased pending deliveries of the endpoints ``:ids`` with ``:reason``."""
    d = table_of(Delivery).c
    now = bindparam("now", type_=UTCDateTime())
    return (
        update(table_of(Delivery))
        .where(
            d.endpoint_id == any_(bindparam("ids", type_=ARRAY(String()))),
            d.status == "pending",
            d.claimed_until.is_(None) | (d.claimed_until < now),
        )
        .values(status="failed", next_attempt_at=None, last_error=bindparam("reason", type_=String()), updated_at=now)
        .returning(d.id)
    )


# Built once: the runtime's prepared-statement helpers compile a statement object once.
_GIVE_UP = _give_up()


async def give_up_orphans(tx: InTransaction, orphans: Sequence[Mapping[str, Any]], now: datetime) -> Counter[str]:
    """Fail the unleased pending deliveries of ``orphans``, endpoint rows the caller found disabled or
    deleted and holds locked (the lock order, endpoint then its deliveries, is the one every writer
    uses), as disabling them did (``fail_pending``); returns how many, by ``given_up`` label."""
    by_reason: dict[tuple[str, str], list[str]] = {}
    for endpoint in orphans:
        deleted = endpoint["deleted_at"] is not None
        label = given_up_label(deleted=deleted)
        reason = given_up_reason(deleted=deleted, disabled_reason=endpoint["disabled_reason"])
        by_reason.setdefault((label, reason), []).append(endpoint["id"])
    counts: Counter[str] = Counter()
    for (label, reason), ids in by_reason.items():
        failed = len(await tx.rows(_GIVE_UP, {"ids": ids, "reason": reason, "now": now}))
        if failed:
            counts[label] += failed
            log.warning("gave up %d pending deliveries of %s (%s)", failed, ids, reason)
    return counts
