"""An outbox vacuumed by its relay, every so many rows it deleted.

An outbox is a queue: every row is written, published and deleted within about a second, and
autovacuum comes by once a minute at most (``autovacuum_naptime``, a server setting no table can
lower). In between, the deleted rows stay in the heap and in the indexes: at a few hundred events a
second, tens of thousands of them, and every claim's scan steps over them (the regional bench:
payments-svc's claim read 1,430 buffers for a batch of a few dozen rows, 1.9 ms, the largest single
cost of a flow in PostgreSQL). Vacuumed every ``VACUUM_EVERY`` deleted rows, the heap keeps to about
that many rows' pages (new rows reuse the space), and a vacuum of so small a table costs a few
milliseconds. ``SKIP_LOCKED``: a vacuum already running (autovacuum's, another relay's) is not
waited for. ``TRUNCATE false``: giving the empty end of the file back to the system takes a lock that
stops every insert into the outbox while it is held, and new rows reuse that space anyway. A failed
vacuum costs nothing but its log line: the rows are published and deleted already, and autovacuum
still comes (payments-svc's claim, regional bench: 835 / 676 → 72 / 76 buffers; docs/BENCHMARKS.md)."""

from __future__ import annotations

import logging

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from billing_runtime.driver import pooled_driver

log = logging.getLogger(__name__)

# Rows published (and deleted) between two vacuums of an outbox by one relay (0: never; autovacuum alone).
VACUUM_EVERY = 1_000
# The longest a relay's vacuum may run, in seconds (a few milliseconds as a rule). Past it the statement
# is cancelled on the server (asyncpg's timeout), and the relay publishes again: a vacuum slowed by a
# backlog's heap, or holding up a migration's lock (and the inserts queued behind that), gives way.
VACUUM_BOUND = 5.0


class OutboxVacuum:
    """Counts the rows a relay published and deleted from ``table``; every ``every`` of them, vacuums it
    (within ``bound`` seconds)."""

    def __init__(
        self, engine: AsyncEngine, table: Table, every: int = VACUUM_EVERY, *, bound: float = VACUUM_BOUND
    ) -> None:
        self.engine = engine
        self.every = every
        self.bound = bound
        self._sql = f"VACUUM (SKIP_LOCKED, TRUNCATE false) {engine.dialect.identifier_preparer.format_table(table)}"
        self._deleted = 0

    async def deleted(self, count: int) -> None:
        if self.every <= 0:
            return
        self._deleted += count
        if self._deleted < self.every:
            return
        self._deleted = 0
        try:
            # Not in a transaction (VACUUM cannot be), by the simple protocol: one statement alone.
            async with pooled_driver(self.engine, self._sql) as driver:
                await driver.execute(self._sql, timeout=self.bound)
        except Exception:
            log.warning("%s failed; autovacuum still comes by", self._sql, exc_info=True)
