"""Recording: each attempt and its delivery's next state, written only while this worker still holds the
delivery's lease (WHK-3, WHK-4), a batch at a time (``GroupCommit``: the first outcome waits for no
timer, those finishing meanwhile form the next batch). A batch of successes on healthy endpoints is one
self-committing statement (WHK-10); any other batch is one transaction that also schedules the retries
(WHK-11) and disables the endpoints that earned it (WHK-6).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from billing_contracts.envelope import utcnow
from billing_runtime.db import UTCDateTime, table_of
from billing_runtime.prepared import execute_statement_alone
from sqlalchemy import bindparam, insert, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncEngine

from webhook_dispatcher.db.models import Attempt, Delivery, Endpoint
from webhook_dispatcher.domain.giving_up import given_up_label
from webhook_dispatcher.domain.schedule import Verdict, judge, next_delay
from webhook_dispatcher.metrics import WebhookMetrics
from webhook_dispatcher.services.attempts import AttemptResult, Claimed
from webhook_dispatcher.services.batching import GroupCommit
from webhook_dispatcher.services.disabling import disable_endpoint
from webhook_dispatcher.services.uow import WebhooksUnitOfWork

log = logging.getLogger(__name__)

_deliveries = table_of(Delivery)
# Executed with one parameter set per attempt (executemany: one round trip on asyncpg); the SET
# columns are the keys of those sets, plus the lease and a retry request cleared for every one.
RECORD_DELIVERY = (
    update(_deliveries)
    .where(_deliveries.c.id == bindparam("b_id"))
    .values(claim_token=None, claimed_until=None, retry_requested=False)
)
RELEASE_DELIVERY = (
    update(_deliveries).where(_deliveries.c.id == bindparam("b_id")).values(claim_token=None, claimed_until=None)
)


# A batch of successes on healthy endpoints (the hot path of ``record_batch``), as one statement that
# commits itself: each delivery leased by this claim is marked succeeded and its attempt logged, and
# each delivery's endpoint comes back with whether it was marked failing meanwhile.
_RECORD_SUCCESSES = text(
    """
    WITH done AS (
        UPDATE webhook_deliveries AS d
        SET attempt_count = d.attempt_count + 1, last_attempt_at = x.started_at,
            last_status_code = x.status_code, last_error = NULL, status = 'succeeded',
            next_attempt_at = NULL, claim_token = NULL, claimed_until = NULL, manual = false,
            resume_at = NULL, retry_requested = false,
            manual_attempts = d.manual_attempts + CASE WHEN d.manual THEN 1 ELSE 0 END, updated_at = :now
        FROM unnest(CAST(:ids AS varchar[]), CAST(:tokens AS varchar[]), CAST(:started AS timestamptz[]),
                    CAST(:codes AS integer[])) AS x(id, token, started_at, status_code)
        WHERE d.id = x.id AND d.claim_token = x.token
        RETURNING d.id, d.attempt_count, d.endpoint_id
    ), logged AS (
        INSERT INTO webhook_attempts (delivery_id, number, started_at, outcome, status_code, error,
                                      latency_ms, response_body, manual)
        SELECT done.id, done.attempt_count, a.started_at, 'succeeded', a.status_code, NULL,
               a.latency_ms, a.body, a.manual
        FROM done
        JOIN unnest(CAST(:ids AS varchar[]), CAST(:started AS timestamptz[]), CAST(:codes AS integer[]),
                    CAST(:latencies AS integer[]), CAST(:bodies AS text[]), CAST(:manuals AS boolean[]))
             AS a(id, started_at, status_code, latency_ms, body, manual) ON a.id = done.id
    )
    SELECT done.id, done.endpoint_id,
           EXISTS (SELECT 1 FROM webhook_endpoints AS e WHERE e.id = done.endpoint_id AND e.failing_since IS NOT NULL)
    FROM done
    """
).bindparams(bindparam("now", type_=UTCDateTime()))
# A success clears a failing mark set meanwhile by an earlier failure (its own statement: endpoint
# rows only, so it cannot deadlock with a transaction that locks an endpoint and then its deliveries).
_HEAL_ENDPOINTS = text(
    """
    UPDATE webhook_endpoints SET failing_since = NULL, last_success_at = :now
    WHERE id = ANY(CAST(:ids AS varchar[])) AND failing_since IS NOT NULL
    """
).bindparams(bindparam("now", type_=UTCDateTime()))


async def _record_successes(
    engine: AsyncEngine, entries: list[tuple[Claimed, AttemptResult | None]], now: datetime
) -> list[str | None]:
    results = [result for _, result in entries]
    assert all(result is not None for result in results)
    params = {
        "now": now,
        "ids": [item.delivery_id for item, _ in entries],
        "tokens": [item.token for item, _ in entries],
        "started": [result.started_at for result in results],  # type: ignore[union-attr]
        "codes": [result.status for result in results],  # type: ignore[union-attr]
        "latencies": [round(result.latency * 1000) for result in results],  # type: ignore[union-attr]
        "bodies": [result.response_body for result in results],  # type: ignore[union-attr]
        "manuals": [item.manual for item, _ in entries],
    }
    rows = await execute_statement_alone(engine, _RECORD_SUCCESSES, params)
    recorded = {delivery_id for delivery_id, _, _ in rows}
    failing = sorted({endpoint_id for _, endpoint_id, marked in rows if marked})
    if failing:
        await execute_statement_alone(engine, _HEAL_ENDPOINTS, {"now": now, "ids": failing})
    outcomes: list[str | None] = []
    for item, _ in entries:
        if item.delivery_id in recorded:
            outcomes.append("succeeded")
        else:
            log.warning("lost the lease on delivery %s; its attempt is not recorded", item.delivery_id)
            outcomes.append(None)
    return outcomes


class Recorder:
    """Records one worker's attempts: ``schedule``, ``jitter`` and ``max_retry_after`` place the
    retries, ``disable_after`` is how long an endpoint may fail before it is disabled."""

    def __init__(
        self,
        uow: Callable[[], WebhooksUnitOfWork],
        metrics: WebhookMetrics,
        *,
        schedule: list[float],
        jitter: float,
        max_retry_after: float,
        disable_after: timedelta,
        max_batch: int,
    ) -> None:
        self.uow = uow
        self.metrics = metrics
        self.schedule = schedule
        self.jitter = jitter
        self.max_retry_after = max_retry_after
        self.disable_after = disable_after
        self._batches: GroupCommit[tuple[Claimed, AttemptResult | None], str | None] = GroupCommit(
            self.record_batch, max_batch=max_batch
        )

    async def submit(self, item: Claimed, result: AttemptResult | None) -> str | None:
        """Record ``item``'s attempt in the next batch or, without a result, hand its lease back;
        returns its outcome as ``record_batch`` does."""
        return await self._batches.submit((item, result))

    async def record_batch(self, entries: list[tuple[Claimed, AttemptResult | None]]) -> list[str | None]:
        """Write each attempt and its delivery's next state in one transaction, each only if this
        worker still holds that delivery's lease (WHK-4); an entry without a result hands its lease
        back untouched. Returns each delivery's outcome (succeeded, retrying, failed), or None for a
        lost lease or a hand-back."""
        now = utcnow()
        outcomes: list[str | None] = [None] * len(entries)
        verdicts: dict[int, Verdict] = {}
        for n, (_, result) in enumerate(entries):
            if result is not None:
                redirected = result.status is not None and 300 <= result.status < 400
                verdicts[n] = judge(None if redirected else result.status, result.retry_after)
        # The hot path (a success on a healthy endpoint) leaves the endpoint row alone unless it was
        # marked failing meanwhile: locking it would serialize every attempt to one endpoint (WHK-10).
        locked_ids = {
            entries[n][0].endpoint_id
            for n, v in verdicts.items()
            if not (v.succeeded and entries[n][0].endpoint_healthy)
        }
        unlocked_ids = {entries[n][0].endpoint_id for n in verdicts} - locked_ids
        async with self.uow() as uow:
            if len(verdicts) == len(entries) and not locked_ids:
                # Every entry a success on a healthy endpoint: the common case, one statement.
                return await _record_successes(uow.bound_engine, entries, now)
            session = uow.session
            endpoints: dict[str, Endpoint] = {}
            if verdicts:
                # Endpoints before deliveries, each in id order: the order the API's endpoint updates and
                # every other recorder lock in, so no deadlock.
                stmt = (
                    select(Endpoint)
                    .where(
                        Endpoint.id.in_(locked_ids)
                        | (Endpoint.id.in_(unlocked_ids) & Endpoint.failing_since.is_not(None))
                    )
                    .order_by(Endpoint.id)
                    .with_for_update(key_share=True)
                )
                endpoints = {e.id: e for e in (await session.execute(stmt)).scalars()}
            held_stmt = (
                select(
                    Delivery.id,
                    Delivery.attempt_count,
                    Delivery.manual_attempts,
                    Delivery.resume_at,
                    Delivery.retry_requested,
                )
                .where(tuple_(Delivery.id, Delivery.claim_token).in_([(i.delivery_id, i.token) for i, _ in entries]))
                .order_by(Delivery.id)
                .with_for_update(key_share=True)
            )
            counts = {row.id: row for row in (await session.execute(held_stmt)).all()}
            attempts: list[dict[str, Any]] = []
            changes: list[dict[str, Any]] = []
            releases: list[dict[str, Any]] = []
            disabling: dict[str, str] = {}

            # In the order the requests started, so an endpoint's failing mark follows its history.
            def started(n: int) -> datetime:
                result = entries[n][1]
                return result.started_at if result is not None else now

            order = sorted(range(len(entries)), key=started)
            for n in order:
                item, result = entries[n]
                if item.delivery_id not in counts:
                    if result is not None:
                        log.warning("lost the lease on delivery %s; its attempt is not recorded", item.delivery_id)
                    continue
                held = counts.pop(item.delivery_id)
                if result is None:
                    releases.append({"b_id": item.delivery_id})
                    continue
                verdict = verdicts[n]
                number = held.attempt_count + 1
                manual_attempts = held.manual_attempts + (1 if item.manual else 0)
                endpoint = endpoints.get(item.endpoint_id)
                if endpoint is not None and (endpoint.deleted_at is not None or endpoint.tenant_id != item.tenant_id):
                    endpoint = None
                attempts.append(
                    {
                        "delivery_id": item.delivery_id,
                        "number": number,
                        "started_at": result.started_at,
                        "outcome": "succeeded" if verdict.succeeded else "failed",
                        "status_code": result.status,
                        "error": result.error,
                        "latency_ms": round(result.latency * 1000),
                        "response_body": result.response_body,
                        "manual": item.manual,
                    }
                )
                next_attempt_at = None
                if verdict.succeeded:
                    outcome = status = "succeeded"
                    if endpoint is not None:
                        endpoint.last_success_at = now
                        endpoint.failing_since = None
                else:
                    delay = None
                    # A disabled or deleted endpoint gets no further attempts, whatever the schedule says.
                    live = endpoint is not None and endpoint.enabled and endpoint.id not in disabling
                    if live and not verdict.gone and not item.manual:
                        # The schedule counts automatic attempts only: a manual one spends no step.
                        delay = next_delay(
                            self.schedule,
                            number - manual_attempts,
                            jitter=self.jitter,
                            retry_after=verdict.retry_after,
                            max_retry_after=self.max_retry_after,
                        )
                    if live and not verdict.gone and item.manual and held.resume_at is not None:
                        # WHK-11: a manual attempt of a pending delivery failed; its schedule resumes.
                        outcome, status = "retrying", "pending"
                        next_attempt_at = max(held.resume_at, now)
                    elif delay is None:
                        outcome = status = "failed"
                    else:
                        outcome, status = "retrying", "pending"
                        next_attempt_at = now + timedelta(seconds=delay)
                    if endpoint is not None and endpoint.enabled and endpoint.id not in disabling:
                        if endpoint.failing_since is None:
                            endpoint.failing_since = now
                        if verdict.gone:
                            disabling[endpoint.id] = "gone"
                        elif now - endpoint.failing_since >= self.disable_after:
                            disabling[endpoint.id] = "failing"
                manual, resume_at = False, None
                live = endpoint is not None and endpoint.enabled and endpoint.id not in disabling
                if held.retry_requested and not verdict.succeeded and live:
                    # A manual retry asked for while this attempt was in flight: one more attempt now,
                    # after which the schedule (if any is left) resumes.
                    manual, resume_at = True, next_attempt_at if status == "pending" else None
                    status, next_attempt_at = "pending", now
                    outcome = "retrying"
                changes.append(
                    {
                        "b_id": item.delivery_id,
                        "attempt_count": number,
                        "manual_attempts": manual_attempts,
                        "manual": manual,
                        "resume_at": resume_at,
                        "last_attempt_at": result.started_at,
                        "last_status_code": result.status,
                        "last_error": result.error,
                        "status": status,
                        "next_attempt_at": next_attempt_at,
                    }
                )
                outcomes[n] = outcome
            if changes:
                await session.execute(RECORD_DELIVERY, [{**c, "updated_at": now} for c in changes])
                await session.execute(insert(table_of(Attempt)), attempts)
            if releases:
                await session.execute(RELEASE_DELIVERY, releases)
            given_up = 0
            for endpoint_id, reason in disabling.items():
                # After the deliveries' own updates: the retries just scheduled fail with the endpoint.
                given_up += await disable_endpoint(uow, endpoints[endpoint_id], reason, now)
            await uow.commit()
        self.metrics.given_up.labels(given_up_label(deleted=False)).inc(given_up)
        return outcomes
