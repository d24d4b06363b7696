"""Which processes of a service are alive: each one upserts its row of ``worker_heartbeats`` (in the
service's own database) every few seconds, and deletes it when it stops gracefully; a row that stops
being refreshed is a process that died (or lost its database). One statement per interval: cheap.

The row also carries what only that process knows and the status endpoint (``billing_runtime.status``)
shows, whichever process serves it: its loops' last passes (``billing_runtime.task_runs``) and, per
queue it consumes, when its oldest dead letter died (read once by the worker's gauges; reading a
RabbitMQ dead-letter queue again on every status call would spend a delivery of each message read)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from billing_contracts.envelope import utcnow
from sqlalchemy import Column, Integer, MetaData, String, Table, delete, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from billing_runtime.db import UTCDateTime

log = logging.getLogger(__name__)

# A row not refreshed for this long is deleted: a process that died a day ago is history, not status.
RETENTION = timedelta(days=1)


def heartbeat_table(metadata: MetaData) -> Table:
    """The ``worker_heartbeats`` table of a service (migrated by that service's Alembic)."""
    return Table(
        "worker_heartbeats",
        metadata,
        Column("worker_id", String(200), primary_key=True),
        Column("role", String(64), nullable=False),
        Column("hostname", String(255), nullable=False),
        Column("pid", Integer(), nullable=False),
        Column("started_at", UTCDateTime(), nullable=False),
        Column("last_seen_at", UTCDateTime(), nullable=False),
        # {"tasks": {name: last pass}, "dead_letters": {queue: oldest dead_at}}: see the module.
        Column("details", JSONB(), nullable=False, server_default=text("'{}'::jsonb")),
    )


def worker_id() -> str:
    """hostname:pid:nonce. The nonce keeps a restarted container (same hostname, pid 1 again) from
    taking over the row of the process it replaced: that one's row must go stale if it died."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Heartbeat:
    def __init__(
        self,
        engine: AsyncEngine,
        table: Table,
        *,
        role: str,
        interval: float,
        details: Callable[[], dict[str, Any]],
    ) -> None:
        self.engine = engine
        self.table = table
        self.role = role
        self.interval = interval
        self.details = details
        self.worker_id = worker_id()
        self.hostname = socket.gethostname()
        self.pid = os.getpid()
        self.started_at = utcnow()

    async def beat(self, now: datetime | None = None) -> None:
        now = now or utcnow()
        t = self.table
        row = {
            "worker_id": self.worker_id,
            "role": self.role,
            "hostname": self.hostname,
            "pid": self.pid,
            "started_at": self.started_at,
            "last_seen_at": now,
            "details": self.details(),
        }
        upsert = pg_insert(t).values(**row)
        upsert = upsert.on_conflict_do_update(
            index_elements=[t.c.worker_id],
            set_={name: upsert.excluded[name] for name in row if name != "worker_id"},
        )
        async with self.engine.begin() as conn:
            await conn.execute(upsert)
            await conn.execute(delete(t).where(t.c.last_seen_at < now - RETENTION))

    async def run(self) -> None:
        while True:
            try:
                await self.beat()
            except Exception as exc:
                # The database away: the row ages, which is what the status should then show.
                log.debug("heartbeat not written: %s", exc)
            await asyncio.sleep(self.interval)

    async def remove(self) -> None:
        """A graceful stop: the process is gone, not dead (only a crash leaves a stale row)."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2), self.engine.begin() as conn:
                await conn.execute(delete(self.table).where(self.table.c.worker_id == self.worker_id))
