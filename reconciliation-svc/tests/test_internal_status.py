"""``GET /internal/status`` of reconciliation-svc (billing_runtime.status): served by an API process on
real PostgreSQL and RabbitMQ, it shows the events' queue with what waits in it and in its dead letters,
the workers alive and stale, the janitor's last pass, and the runs: the last one of each kind with its
state and counts, and how many are queued or running. Only the gateway may read it."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from billing_contracts.envelope import utcnow
from billing_runtime.testing import scratch_vhost
from billing_runtime.testing_status import put_dead_letter, put_stale_worker, put_waiting
from reconciliation_svc.db.models import heartbeats
from reconciliation_svc.db.run_models import RunRow
from reconciliation_svc.events.consumers import EVENTS_QUEUE
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from .support import admin_headers


@pytest.fixture
def rabbit_url() -> Iterator[str]:
    # A vhost of its own: a platform another test left running on the run's vhost (tests/e2e's live
    # for the session) consumes this queue there, and the depth and consumers counted would be theirs.
    with scratch_vhost(f"status-reconciliation-{os.getpid()}-{secrets.token_hex(3)}") as url:
        yield url


async def _run(engine: AsyncEngine, run_id: str, trigger: str, state: str, minutes_ago: int, **values: Any) -> None:
    at = utcnow() - timedelta(minutes=minutes_ago)
    row: dict[str, Any] = {
        "id": run_id,
        "account_id": "pac_1",
        "provider": "click",
        "period_from": date(2026, 12, 4),
        "period_to": date(2026, 12, 4),
        "trigger": trigger,
        "started_by": trigger,
        "state": state,
        "created_at": at,
        "updated_at": at,
    }
    row.update(values)
    async with engine.begin() as conn:
        await conn.execute(insert(RunRow).values(**row))


async def test_distributed_api_process_shows_queue_workers_and_runs(
    start_app: Any, clean_db: AsyncEngine, rabbit_url: str
) -> None:
    await put_waiting(rabbit_url, EVENTS_QUEUE, 2)
    await put_dead_letter(rabbit_url, EVENTS_QUEUE)
    await put_stale_worker(clean_db, heartbeats)
    await _run(
        clean_db, "rrun_old", "schedule", "succeeded", 60 * 24, lines_read=10, matched=10,
        period_from=date(2026, 12, 3), period_to=date(2026, 12, 3),
    )  # fmt: skip
    await _run(
        clean_db, "rrun_night", "schedule", "succeeded", 60, lines_read=120, matched=117,
        discrepancies_found=3, summary={"missing_ours": 2, "amount_mismatch": 1},
        started_at=utcnow() - timedelta(minutes=59), finished_at=utcnow() - timedelta(minutes=58),
    )  # fmt: skip
    await _run(clean_db, "rrun_asked", "admin", "queued", 1)
    client = await start_app(roles=("api",), bus_url=rabbit_url)

    resp = await client.get("/internal/status", headers=admin_headers())
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert (body["service"], body["mode"]) == ("reconciliation", "distributed")
    [queue] = body["queues"]
    assert (queue["name"], queue["depth"], queue["consumers"]) == (EVENTS_QUEUE, 2, 0)
    assert queue["dead_letters"]["depth"] == 1
    assert (body["workers"]["alive_count"], body["workers"]["stale_count"]) == (1, 1)
    assert body["janitor"] == {"janitor": None}
    runs = body["reconciliation"]
    assert runs["runs"] == {"failed": 0, "queued": 1, "running": 0, "succeeded": 2}
    night = runs["last_runs"]["schedule"]
    assert (night["id"], night["state"]) == ("rrun_night", "succeeded")
    assert night["progress"]["lines_read"] == 120
    assert night["summary"]["missing_ours"] == 2
    assert runs["last_runs"]["admin"]["id"] == "rrun_asked"
    assert runs["last_runs"]["cli"] is None


async def test_embedded_worker_shows_the_janitors_pass(start_app: Any, eventually: Any) -> None:
    client = await start_app(janitor_interval=0.05)

    async def passed() -> bool:
        body = await (await client.get("/internal/status", headers=admin_headers())).json()
        run = body["janitor"]["janitor"]
        return run is not None and run["outcome"] == "succeeded" and run["counts"] == {"checked": 0, "healed": 0}

    await eventually(passed)
