"""``reconciliation-svc rebuild`` (REC-6): empty the projection of our payments and refunds and refill it
from payments-svc's event log, in one transaction, so the projection is never seen half-built and a
rebuild that fails (payments-svc down midway) leaves the old one in place. The providers' verdicts and
the discrepancies are not in that log and are kept. Events consumed meanwhile wait for the transaction
and then apply through the same sequence guard, so nothing newer is lost."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from billing_contracts.events import PAYMENT_EVENTS, REFUND_EVENTS
from pydantic import ValidationError

from reconciliation_svc.db.projection import empty_rebuilt_tables
from reconciliation_svc.services.payments_http import EventLogUnavailable, PaymentsEventLog
from reconciliation_svc.services.projection import ProjectionDeps, projection_writes

log = logging.getLogger(__name__)


@dataclass
class RebuildResult:
    events: int = 0
    applied: int = 0
    skipped: int = 0


# The log's types the projection takes; the others (dispute.*, endpoint.disabled, types newer than this
# version) are skipped unread.
_PROJECTED = {cls.model_fields["event_type"].default: cls for cls in (*PAYMENT_EVENTS, *REFUND_EVENTS)}


def log_event(item: dict[str, Any]) -> Any:
    """The contract event a log entry is (``/v1/events`` shape plus ``tenant_id``), or None for a type
    the projection does not take; an entry of a projected type that does not parse raises."""
    cls = _PROJECTED.get(str(item.get("type")))
    if cls is None:
        return None
    return cls.model_validate(
        {
            "event_id": item["id"],
            "tenant_id": item["tenant_id"],
            "livemode": item.get("livemode", False),
            "occurred_at": item["created_at"],
            "data": item["data"],
        }
    )


async def rebuild(deps: ProjectionDeps, event_log: PaymentsEventLog, *, page_size: int) -> RebuildResult:
    done = RebuildResult()
    async with deps.uow() as unit:
        await empty_rebuilt_tables(unit.session)
        async for page in event_log.pages(page_size):
            for item in page.events:
                done.events += 1
                try:
                    event = log_event(item)
                except (KeyError, ValidationError) as exc:
                    raise EventLogUnavailable(f"event {item.get('id')} of the log does not parse: {exc}") from exc
                writes = projection_writes(event, deps.first_check) if event is not None else None
                if not writes:
                    done.skipped += 1
                    continue
                for stmt in writes:
                    await unit.session.execute(stmt)
                done.applied += 1
        await unit.commit()
    log.info("rebuild: %s events read, %s applied, %s skipped", done.events, done.applied, done.skipped)
    return done
