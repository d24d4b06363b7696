"""What reconciliation-svc's ``GET /internal/status`` shows (``billing_runtime.status``): its queue of
events, its processes, the janitor's last pass, and its runs: the last of each kind (the nightly
schedule, on demand from the admin API or the command line) and how many wait or run now."""

from __future__ import annotations

from typing import Any

from billing_runtime.plumbing import Plumbing
from billing_runtime.status import StatusSource
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from reconciliation_svc.api.run_schemas import run_json
from reconciliation_svc.db.models import heartbeats, outbox
from reconciliation_svc.db.run_models import RunRow
from reconciliation_svc.domain.runs import RUN_STATES, RUN_TRIGGERS
from reconciliation_svc.events.consumers import EVENT_BINDING_KEYS, EVENTS_QUEUE
from reconciliation_svc.services.janitor import JANITOR
from reconciliation_svc.settings import Settings


async def runs_status(engine: AsyncEngine) -> dict[str, Any]:
    latest = (
        select(RunRow)
        .ext(distinct_on(RunRow.trigger))
        .order_by(RunRow.trigger, RunRow.created_at.desc(), RunRow.id.desc())
    )
    async with AsyncSession(engine) as session:
        last = {row.trigger: row for row in (await session.scalars(latest)).all()}
        counts = dict((await session.execute(select(RunRow.state, func.count()).group_by(RunRow.state))).all())
    return {
        "runs": {state: int(counts.get(state, 0)) for state in sorted(RUN_STATES)},
        # schedule: the nightly run; admin and cli: on demand.
        "last_runs": {t: run_json(last[t]) if t in last else None for t in sorted(RUN_TRIGGERS)},
    }


def status_source(settings: Settings, plumbing: Plumbing) -> StatusSource:
    return StatusSource(
        service="reconciliation",
        plumbing=plumbing,
        bus_url=settings.bus_url,
        queues={EVENTS_QUEUE: EVENT_BINDING_KEYS},
        heartbeats=heartbeats,
        # It publishes nothing (no relay): its outbox stays empty, shown as such.
        outbox=outbox,
        janitors=(JANITOR,),
        sections={"reconciliation": runs_status},
        heartbeat_interval=settings.heartbeat_interval,
    )
