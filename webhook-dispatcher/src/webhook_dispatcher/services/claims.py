"""Claiming: one transaction leases a batch of due deliveries, each endpoint's oldest first, and only of
endpoints no other worker holds a lease on, so one worker at a time owns an endpoint's traffic (WHK-3,
WHK-8). A lease is a token and an expiry on the delivery row: the database is the queue, and a dead
worker's claim simply expires (WHK-4).
"""

from __future__ import annotations

import functools
import secrets
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from billing_contracts.envelope import utcnow
from billing_runtime.db import UTCDateTime, table_of
from billing_runtime.prepared import InTransaction, execute_statement_alone, transaction_alone
from sqlalchemy import Integer, Select, String, all_, any_, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY

from webhook_dispatcher.crypto import SecretBox
from webhook_dispatcher.db.models import Delivery, Endpoint
from webhook_dispatcher.metrics import WebhookMetrics
from webhook_dispatcher.services.attempts import Claimed, Lease
from webhook_dispatcher.services.disabling import give_up_orphans
from webhook_dispatcher.services.uow import WebhooksUnitOfWork

# How stale an endpoint's last_success_at may get before a success refreshes it (and locks the row).
HEALTHY_WINDOW = timedelta(seconds=60)
# Deliveries of one endpoint a worker leases ahead, per slot of its concurrency cap: enough to keep the
# cap busy while the previous batch is being recorded and the next one claimed.
LEASE_DEPTH = 16

_deliveries = table_of(Delivery)
# Each endpoint's oldest due deliveries (SKIP LOCKED), leased and returned with their bodies: one
# statement for a whole batch. The LATERAL subquery walks ix_webhook_deliveries_endpoint_due, so it
# reads only the rows it leases, whatever the endpoint's backlog.
LEASE_SQL = text(
    """
    UPDATE webhook_deliveries AS d
    SET claim_token = :token, claimed_until = :until
    FROM (
        SELECT p.id
        FROM unnest(CAST(:endpoints AS varchar[]), CAST(:quotas AS integer[])) AS q(endpoint_id, quota)
        CROSS JOIN LATERAL (
            SELECT w.id FROM webhook_deliveries AS w
            WHERE w.endpoint_id = q.endpoint_id AND w.status = 'pending' AND w.next_attempt_at <= :now
              AND (w.claimed_until IS NULL OR w.claimed_until < :now)
            ORDER BY w.next_attempt_at, w.id
            LIMIT q.quota
            FOR NO KEY UPDATE SKIP LOCKED
        ) AS p
    ) AS picked, webhook_events AS e
    WHERE d.id = picked.id AND e.id = d.event_id
    RETURNING d.id, d.tenant_id, d.endpoint_id, d.event_id, d.manual, d.next_attempt_at, e.body
    """
).bindparams(bindparam("now", type_=UTCDateTime()), bindparam("until", type_=UTCDateTime()))


def _lock_endpoints(*, enabled_only: bool) -> Select[Any]:
    """The endpoints among ``:ids`` (with ``enabled_only``, the enabled ones), locked, skipping those
    another claim or ingest holds. NO KEY UPDATE, not UPDATE: inserting a delivery takes KEY SHARE on
    its endpoint (the foreign key), and a plain FOR UPDATE here would skip every endpoint that is
    receiving new events, starving exactly the busiest endpoints."""
    e = table_of(Endpoint).c
    stmt = select(*table_of(Endpoint).c).where(e.id == any_(bindparam("ids", type_=ARRAY(String()))))
    if enabled_only:
        stmt = stmt.where(e.enabled.is_(True), e.deleted_at.is_(None))
    return stmt.with_for_update(skip_locked=True, key_share=True)


def _taken_endpoints() -> Select[Any]:
    """Which of the endpoints ``:ids`` have deliveries under a live lease of a worker other than
    ``:worker``."""
    d = _deliveries.c
    now = bindparam("now", type_=UTCDateTime())
    return (
        select(d.endpoint_id)
        .where(
            d.endpoint_id == any_(bindparam("ids", type_=ARRAY(String()))),
            d.claim_token.is_not(None),
            d.status == "pending",
            d.claimed_until >= now,
            ~d.claim_token.startswith(bindparam("worker", type_=String())),
        )
        .distinct()
    )


def _candidates() -> Select[tuple[str]]:
    """The endpoints with the oldest due deliveries, up to ``:limit``, among the ``:window`` oldest due
    deliveries of endpoints neither in ``:full`` nor leased by a worker other than ``:worker``: the
    claim's first step."""
    d = _deliveries.c
    now = bindparam("now", type_=UTCDateTime())
    theirs = (
        d.claim_token.is_not(None)
        & (d.status == "pending")
        & (d.claimed_until >= now)
        & ~d.claim_token.startswith(bindparam("worker", type_=String()))
    )
    window = (
        select(d.endpoint_id, d.next_attempt_at)
        .where(
            (d.status == "pending"),
            d.next_attempt_at <= now,
            d.claimed_until.is_(None) | (d.claimed_until < now),
            d.endpoint_id != all_(bindparam("full", type_=ARRAY(String()))),
            d.endpoint_id.not_in(select(d.endpoint_id).where(theirs)),
        )
        .order_by(d.next_attempt_at)
        .limit(bindparam("window", type_=Integer()))
        .subquery()
    )
    return (
        select(window.c.endpoint_id)
        .group_by(window.c.endpoint_id)
        .order_by(func.min(window.c.next_attempt_at))
        .limit(bindparam("limit", type_=Integer()))
    )


# Built once, at import: the runtime's prepared-statement helpers compile a statement object once and
# reuse its driver SQL, so each claim must pass the same objects.
LOCK_ENDPOINTS = _lock_endpoints(enabled_only=True)
# The claim's lock: disabled and deleted candidates too, so that an endpoint missing from its rows is
# one another worker holds, and one present but no longer enabled is known without a second statement.
_LOCK_CANDIDATES = _lock_endpoints(enabled_only=False)
_TAKEN_ENDPOINTS = _taken_endpoints()
_CANDIDATES = _candidates()


@functools.cache
def _next_due() -> Select[Any]:
    # The earliest pending delivery (index on status, next_attempt_at): one index probe.
    d = table_of(Delivery)
    return select(func.min(d.c.next_attempt_at)).where(d.c.status == "pending")


class Claimer:
    """Leases due deliveries for one worker. Every claim token starts with ``worker_id``: that is how a
    claim tells this worker's leases from another worker's."""

    def __init__(
        self,
        uow: Callable[[], WebhooksUnitOfWork],
        box: SecretBox,
        metrics: WebhookMetrics,
        *,
        worker_id: str,
        lease: timedelta,
        per_endpoint: int,
    ) -> None:
        self.uow = uow
        self.box = box
        self.metrics = metrics
        self.worker_id = worker_id
        self.lease = lease
        # How many deliveries of one endpoint this worker leases ahead of sending them.
        self.depth = per_endpoint * LEASE_DEPTH
        # An endpoint is topped up once half its depth is left, so each claim brings at least half a
        # depth of its deliveries instead of a few at a time.
        self.refill_mark = max(1, self.depth // 2)

    async def next_due(self) -> datetime | None:
        """When the earliest pending delivery is due (perhaps already, if it is leased or its endpoint
        held); None when nothing is pending."""
        async with self.uow() as uow:
            rows = await execute_statement_alone(uow.bound_engine, _next_due(), {})
        due: datetime | None = rows[0][0] if rows else None
        return due

    async def claim(
        self, limit: int, *, held: Mapping[str, int] | None = None, skip: Collection[str] = ()
    ) -> list[Claimed]:
        """Lease up to ``limit`` due deliveries in one transaction, at most ``depth`` per endpoint
        counting the ``held`` ones (read as the claim goes: the worker's live counts), none of the
        endpoints in ``skip``, and only of endpoints no other worker holds a lease on (WHK-8).

        The endpoint rows are locked (SKIP LOCKED) while the other workers' leases are checked and the
        deliveries leased, so two workers can never both take one endpoint. Pending deliveries of a
        candidate found disabled or deleted are given up in the same transaction (``give_up_orphans``).
        Driver SQL on one pooled connection (``transaction_alone``): no ORM session on the claim loop.
        """
        while True:
            claimed, given_up = await self._claim_once(limit, {} if held is None else held, skip)
            # Only orphans were found, and they are gone from the due window now: claim again at once
            # rather than idle a poll interval (each round fails some rows, so this ends).
            if claimed or not given_up:
                return claimed

    async def _claim_once(
        self, limit: int, held: Mapping[str, int], skip: Collection[str]
    ) -> tuple[list[Claimed], bool]:
        """One claim transaction: (what it leased, whether it gave up orphans)."""
        lease, now, until = self.new_lease()
        full = [endpoint_id for endpoint_id, n in held.items() if n >= self.refill_mark]
        full.extend(skip)
        async with self.uow() as uow:
            engine = uow.bound_engine
        # The oldest due deliveries only (index on status, next_attempt_at), never the whole backlog;
        # endpoints this worker cannot take now are left out first, so they cannot crowd out the others
        # (a worker never idles while an endpoint it could serve has due deliveries). Advisory
        # (re-checked under the locks below), so outside the transaction: a claim that finds nothing,
        # the usual end of a claim loop, is then one statement, not three.
        params = {"now": now, "worker": self.worker_id, "full": full, "window": limit * 4, "limit": limit}
        found = await execute_statement_alone(engine, _CANDIDATES, params)
        endpoint_ids = [row[0] for row in found]
        if not endpoint_ids:
            return [], False
        endpoints: dict[str, Any] = {}

        async def work(tx: InTransaction) -> tuple[list[tuple[Any, ...]], Counter[str]]:
            # Rows without the ORM (what is read is only looked at). An endpoint missing from them is
            # held by another claim or an ingest; one disabled or deleted whose deliveries are still due
            # was missed by the disabling (they were stored by an ingest that raced it), and they are
            # given up here, so they cannot sit in the due window forever.
            orphans = []
            for row in await tx.fetch(_LOCK_CANDIDATES, {"ids": endpoint_ids}):
                if row["enabled"] and row["deleted_at"] is None:
                    endpoints[row["id"]] = SimpleNamespace(**row)
                else:
                    orphans.append(row)
            given_up = await give_up_orphans(tx, orphans, now) if orphans else Counter[str]()
            if not endpoints:
                return [], given_up
            # Authoritative, under the endpoint locks: a claim that committed before we locked is seen.
            mine = {"ids": list(endpoints), "now": now, "worker": self.worker_id}
            taken = {row["endpoint_id"] for row in await tx.fetch(_TAKEN_ENDPOINTS, mine)}
            eligible = [e for e in endpoint_ids if e in endpoints and e not in taken]
            # An even share each (the batch is not spent on the first endpoint's backlog), oldest first.
            share = max(1, limit // max(1, len(eligible)))
            quotas: dict[str, int] = {}
            for endpoint_id in eligible[:limit]:
                quota = min(self.depth - held.get(endpoint_id, 0), share)
                if quota > 0:
                    quotas[endpoint_id] = quota
            if not quotas:
                return [], given_up
            leasing = {
                "endpoints": list(quotas),
                "quotas": list(quotas.values()),
                "token": lease.token,
                "now": now,
                "until": until,
            }
            return await tx.rows(LEASE_SQL, leasing), given_up

        # Nothing leased and nothing given up: the transaction wrote nothing, so its commit is a no-op.
        rows, given_up = await transaction_alone(engine, work)
        for label, count in given_up.items():
            self.metrics.given_up.labels(label).inc(count)
        if not rows:
            return [], bool(given_up)
        # (id, tenant, endpoint, event, manual, next_attempt_at, body): each endpoint's in due order.
        rows.sort(key=lambda r: (r[2], r[5], r[0]))
        claimed = as_claimed(
            self.box, endpoints, ((row[0], row[1], row[2], row[3], row[6], row[4]) for row in rows), lease, now
        )
        return claimed, bool(given_up)

    def new_lease(self) -> tuple[Lease, datetime, datetime]:
        """A claim token of this worker's, with when the lease ends: (lease, now, until)."""
        deadline = time.monotonic() + self.lease.total_seconds()
        now = utcnow()
        return Lease(self.worker_id + secrets.token_hex(10), deadline), now, now + self.lease


def as_claimed(
    box: SecretBox,
    endpoints: Mapping[str, Any],
    rows: Iterable[tuple[str, str, str, str, str, bool]],
    lease: Lease,
    now: datetime,
) -> list[Claimed]:
    """Leased deliveries as the worker sends them: ``rows`` are (delivery id, tenant, endpoint id, event
    id, body, manual), ``endpoints`` the locked endpoint rows by id."""
    keys: dict[str, list[str]] = {}
    claimed = []
    for delivery_id, tenant_id, endpoint_id, event_id, body, manual in rows:
        endpoint = endpoints[endpoint_id]
        if endpoint_id not in keys:
            keys[endpoint_id] = _keys(box, endpoint, now)
        claimed.append(
            Claimed(
                delivery_id=delivery_id,
                tenant_id=tenant_id,
                endpoint_id=endpoint_id,
                event_id=event_id,
                url=endpoint.url,
                body=body.encode(),
                secrets=keys[endpoint_id],
                manual=manual,
                token=lease.token,
                endpoint_healthy=endpoint.failing_since is None
                and endpoint.last_success_at is not None
                and now - endpoint.last_success_at < HEALTHY_WINDOW,
                lease_deadline=lease.deadline,
            )
        )
    return claimed


def _keys(box: SecretBox, endpoint: Any, now: datetime) -> list[str]:
    """The secrets that sign the endpoint's requests: the current one and, during the rotation grace
    period, the previous one (WHK-5)."""
    keys = [box.decrypt(endpoint.secret_encrypted)]
    if (
        endpoint.previous_secret_encrypted is not None
        and endpoint.previous_secret_expires_at is not None
        and endpoint.previous_secret_expires_at > now
    ):
        keys.append(box.decrypt(endpoint.previous_secret_encrypted))
    return keys
