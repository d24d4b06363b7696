"""``GET /internal/status`` of a service: the operators' one look at its background machinery, which
the gateway gathers into ``GET /admin/status`` (gateway README, "Platform status").

Served by the service's API process, which may run none of that machinery itself, so everything is
read from where every process can see it: the broker (passive declares) or, embedded, the outboxes;
the service's outbox table; and its ``worker_heartbeats`` rows (``billing_runtime.heartbeats``), which
carry each process's loops' last passes and oldest dead letters. Each section is read on its own: one
that fails says so (``{"error": ...}``) and the rest still answer. Nothing secret is shown (no URL,
no DSN; errors are redacted)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from billing_contracts.envelope import utcnow
from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from billing_runtime.bus.memory import MemoryBus
from billing_runtime.internal_auth import require_platform_caller
from billing_runtime.outbox import outbox_backlog_stats
from billing_runtime.plumbing import Plumbing
from billing_runtime.queue_status import QueueStatus, describe_error, memory_queues, rabbit_queues

STATUS_PATH = "/internal/status"

Section = Callable[[AsyncEngine], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class StatusSource:
    """What a service's status shows. ``queues``: every queue the service's workers consume, with its
    binding keys (known statically: the API process serving the status consumes none). ``janitors``:
    the background loops reported under ``janitor`` (each tracks its passes with ``plumbing.runs``).
    ``sections``: the service's own (name → a read of its database)."""

    service: str
    plumbing: Plumbing
    bus_url: str
    queues: Mapping[str, Sequence[str]]
    heartbeats: Table
    outbox: Table | None = None
    janitors: Sequence[str] = ()
    sections: Mapping[str, Section] = field(default_factory=dict)
    # The interval its processes beat at: one silent for 12 of them is stale (not merely one beat late).
    heartbeat_interval: float = 10.0
    broker_timeout: float = 2.0

    @property
    def stale_after(self) -> timedelta:
        return timedelta(seconds=12 * self.heartbeat_interval)

    @property
    def mode(self) -> str:
        return "embedded" if self.bus_url.startswith("memory") else "distributed"


async def service_status(source: StatusSource) -> dict[str, Any]:
    engine = source.plumbing.engine
    assert engine is not None, "the database opens with the application"
    now = utcnow()
    heartbeats, queues, outbox, *own = await asyncio.gather(
        _guarded(_heartbeat_rows(source, engine)),
        _guarded(_queues(source)),
        _guarded(_outbox(source, engine)),
        *(_guarded(section(engine)) for section in source.sections.values()),
    )
    status: dict[str, Any] = {
        "object": "service_status",
        "service": source.service,
        "mode": source.mode,
        "generated_at": now.isoformat(),
        "queues": _queues_json(queues, heartbeats, now),
        "outbox": outbox,
        "workers": _workers_json(heartbeats, now, source.stale_after),
        "janitor": _janitor_json(heartbeats, source.janitors),
    }
    status.update(dict(zip(source.sections, own, strict=True)))
    return status


async def _guarded(read: Awaitable[Any]) -> Any:
    try:
        return await read
    except Exception as exc:
        return {"error": describe_error(exc)}


async def _queues(source: StatusSource) -> list[QueueStatus]:
    bus = source.plumbing.bus
    if source.mode == "embedded":
        if not isinstance(bus, MemoryBus):
            missing = "the in-process bus is not open in this process"
            return [QueueStatus(queue, error=missing) for queue in source.queues]
        return await memory_queues(bus, source.queues)
    # Bounded as a whole: a broker that accepts the connection and then stalls must not hold the answer.
    async with asyncio.timeout(2 * source.broker_timeout):
        return await rabbit_queues(source.bus_url, list(source.queues), connect_timeout=source.broker_timeout)


async def _outbox(source: StatusSource, engine: AsyncEngine) -> dict[str, Any] | None:
    if source.outbox is None:
        return None
    backlog, age = await outbox_backlog_stats(engine, source.outbox)
    t = source.outbox
    async with engine.connect() as conn:
        dead = (await conn.execute(select(func.count()).where(t.c.dead_at.is_not(None)))).scalar_one()
    # "dead": embedded only, the events some consumer gave up on (kept marked, by queue in ``queues``).
    return {"backlog": backlog, "oldest_age_seconds": round(age, 3), "dead": int(dead)}


@dataclass
class _Beat:
    worker_id: str
    role: str
    hostname: str
    pid: int
    started_at: datetime
    last_seen_at: datetime
    details: dict[str, Any]


async def _heartbeat_rows(source: StatusSource, engine: AsyncEngine) -> list[_Beat]:
    t = source.heartbeats
    async with engine.connect() as conn:
        rows = (await conn.execute(select(t).order_by(t.c.started_at))).all()
    beats = [_Beat(**row._asdict()) for row in rows if row.worker_id != _own_id(source)]
    own = source.plumbing.heartbeat
    if own is not None:
        # This process is alive (it is answering), its first beat written or not, and its own figures
        # are fresher than its last beat.
        beats.append(
            _Beat(
                worker_id=own.worker_id,
                role=own.role,
                hostname=own.hostname,
                pid=own.pid,
                started_at=own.started_at,
                last_seen_at=utcnow(),
                details=source.plumbing.details(),
            )
        )
    return beats


def _own_id(source: StatusSource) -> str | None:
    own = source.plumbing.heartbeat
    return own.worker_id if own is not None else None


def _alive(beats: Any, now: datetime, stale_after: timedelta) -> list[_Beat]:
    if not isinstance(beats, list):
        return []
    return [beat for beat in beats if now - beat.last_seen_at <= stale_after]


def _queues_json(queues: Any, beats: Any, now: datetime) -> Any:
    if not isinstance(queues, list):
        return queues
    # Distributed: the oldest dead letter as the consuming workers last read it (see heartbeats).
    seen: dict[str, datetime] = {}
    for beat in beats if isinstance(beats, list) else []:
        for queue, when in (beat.details.get("dead_letters") or {}).items():
            moment = datetime.fromisoformat(when)
            seen[queue] = min(seen.get(queue, moment), moment)
    for status in queues:
        if status.oldest_dead_at is None and status.dead_letters:
            status.oldest_dead_at = seen.get(status.name)
    return [status.as_json(now) for status in queues]


def _workers_json(beats: Any, now: datetime, stale_after: timedelta) -> Any:
    if not isinstance(beats, list):
        return beats
    alive = _alive(beats, now, stale_after)
    stale = [beat for beat in beats if beat not in alive]
    return {
        "stale_after_seconds": int(stale_after.total_seconds()),
        "alive": [
            {
                "id": beat.worker_id,
                "role": beat.role,
                "hostname": beat.hostname,
                "pid": beat.pid,
                "queues": beat.details.get("queues", []),
                "started_at": beat.started_at.isoformat(),
                "last_seen_at": beat.last_seen_at.isoformat(),
            }
            for beat in alive
        ],
        "alive_count": len(alive),
        # Seen once, silent since (a crash, or its database away: a graceful stop deletes its row);
        # kept for a day.
        "stale_count": len(stale),
        "stale": [
            {"id": beat.worker_id, "role": beat.role, "last_seen_at": beat.last_seen_at.isoformat()} for beat in stale
        ],
    }


def _janitor_json(beats: Any, names: Sequence[str]) -> Any:
    if not isinstance(beats, list):
        return beats
    found: dict[str, Any] = {name: None for name in names}
    for beat in beats:
        for name, run in (beat.details.get("tasks") or {}).items():
            if name not in found:
                continue
            known = found[name]
            if known is None or run["last_started_at"] > known["last_started_at"]:
                found[name] = {**run, "worker": beat.worker_id}
    return found


def add_status_route(app: web.Application, source: StatusSource) -> None:
    """``GET /internal/status`` for the gateway's platform calls only (403 for any other caller)."""

    async def status(request: web.Request) -> web.Response:
        require_platform_caller(request, "gateway")
        return web.json_response(await service_status(source), headers={"Cache-Control": "no-store"})

    app.router.add_get(STATUS_PATH, status)
