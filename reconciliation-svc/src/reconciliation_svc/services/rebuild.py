"""``reconciliation-svc rebuild`` (REC-6): empty the projection and refill it, in one transaction, our
payments and refunds from payments-svc's event log, then the providers' verdicts from providers-svc's
``GET /internal/verdicts`` (each the event that published it, every state of each dispute included),
every one through the writes the live events make. So the projection is never seen half-built, and a
rebuild that fails (either service down midway) leaves the old one in place. The verdicts come second:
each files its payment under its provider account (``provider_account_filed``), as a live verdict does
for a payment that came first. The discrepancies are kept. Events consumed meanwhile wait for the
transaction and then apply through the same guards (sequence, occurred_at, provider_updated_at), so
nothing newer is lost."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from billing_contracts.events import PAYMENT_EVENTS, REFUND_EVENTS
from pydantic import ValidationError

from reconciliation_svc.db.projection import empty_rebuilt_tables
from reconciliation_svc.services.payments_http import EventLogUnavailable, PaymentsEventLog
from reconciliation_svc.services.projection import ProjectionDeps, projection_writes
from reconciliation_svc.services.verdicts_http import ProvidersVerdicts

log = logging.getLogger(__name__)


@dataclass
class RebuildResult:
    events: int = 0
    applied: int = 0
    skipped: int = 0
    # The providers' verdicts applied (every one providers-svc handed out).
    verdicts: int = 0


# The log's types the projection takes; the others (endpoint.disabled, types newer than this version)
# are skipped unread, and so is ``dispute.*``: it names neither the provider's dispute id nor the
# funds' movements between opening and closing, which ``recon_disputes`` keeps. That table is refilled
# from the verdicts instead: every ``provider.dispute.updated`` providers-svc published.
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


async def rebuild(
    deps: ProjectionDeps, event_log: PaymentsEventLog, verdicts: ProvidersVerdicts, *, page_size: int
) -> RebuildResult:
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
        async for verdict_page in verdicts.pages(page_size):
            for verdict in verdict_page:
                for stmt in projection_writes(verdict, deps.first_check) or []:
                    await unit.session.execute(stmt)
                done.verdicts += 1
        await unit.commit()
    log.info(
        "rebuild: %s events read, %s applied, %s skipped; %s provider verdicts",
        done.events,
        done.applied,
        done.skipped,
        done.verdicts,
    )
    return done
