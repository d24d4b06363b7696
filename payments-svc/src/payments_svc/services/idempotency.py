"""Idempotent POSTs: Stripe semantics with the IETF draft's status codes.

IDEM-1  The key is claimed in its own short transaction; the effect and the stored response then
        commit together in one transaction, so a stored response always means the effect happened
        and a missing one means it did not.
IDEM-2  A claim whose holder died (lock expired, nothing committed) may be taken over by one retry.
        A holder that was only slow finds out when it completes: the response is stored only while the
        claim is still its own (the lock it claimed with, not completed), else its effect rolls back and
        it answers 409 ``idempotency_key_in_use``: one key, one effect.
IDEM-3  Requests rejected by validation never reach the claim, so they are not stored.
IDEM-4  The claim commits without waiting for durability; only the effect's commit must be durable.
IDEM-5  An effect that touches nothing outside this service's database (``local_effect``) skips the
        separate claim: it runs first, and its writes commit in one statement together with the key
        row, inserted already completed, or not at all if the key exists. That is IDEM-1 with the
        claim and the effect in one transaction (one round trip on PostgreSQL). A key that exists
        sends the request down the two-phase path (replay, 422, 409 or take-over), so a retry racing
        the first request waits for its commit and then replays it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from billing_contracts.envelope import utcnow
from billing_runtime.errors import ProblemError

from payments_svc.db.repositories import IdempotencyRepository, completed_idempotency_key
from payments_svc.services.uow import PaymentsUnitOfWork

LOCK_TIMEOUT = timedelta(seconds=60)


@dataclass(frozen=True)
class IdempotentRequest:
    tenant_id: str
    method: str
    path: str
    key: str
    body: dict[str, Any]

    @property
    def fingerprint(self) -> str:
        canonical = json.dumps(self.body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: str
    replayed: bool


Work = Callable[[PaymentsUnitOfWork], Awaitable[tuple[int, dict[str, Any]]]]


@dataclass(frozen=True)
class Claim:
    """A key claimed by this request: its row and the lock it holds it with (the claim's identity)."""

    row_id: int
    lock: datetime


class ClaimLost(ProblemError):
    """The claim expired while the request ran and a retry took the key over: this request's effect is
    rolled back, the retry's is the key's only one."""

    def __init__(self) -> None:
        super().__init__(
            409,
            "idempotency_key_in_use",
            "This request outlived its hold on the Idempotency-Key and another request took it over; nothing"
            " was done by this one. Retry to get that request's response.",
            headers={"Retry-After": "1"},
        )


async def _claim(uow_factory: Callable[[], PaymentsUnitOfWork], req: IdempotentRequest) -> Claim | StoredResponse:
    now = utcnow()
    async with uow_factory() as uow:
        # IDEM-1: the claim is its own transaction, in one round trip: a single INSERT that commits
        # itself. Everything after it here is a read or a single conditional UPDATE, each safe alone.
        await uow.autocommit()
        repo = IdempotencyRepository(uow.session, req.tenant_id)
        lock = now + LOCK_TIMEOUT
        claimed = await repo.insert_in_flight(req.method, req.path, req.key, req.fingerprint, now, lock)
        if claimed is not None:
            await uow.commit()
            return Claim(claimed, lock)
        row = await repo.get(req.method, req.path, req.key)
        assert row is not None
        if row.fingerprint != req.fingerprint:
            raise ProblemError(
                422,
                "idempotency_key_reused",
                "This Idempotency-Key was already used with a different request body.",
            )
        if row.completed_at is not None and row.response_status is not None and row.response_body is not None:
            return StoredResponse(row.response_status, row.response_body, replayed=True)
        if row.locked_until is not None and row.locked_until > now:
            raise ProblemError(
                409,
                "idempotency_key_in_use",
                "A request with this Idempotency-Key is still being processed; retry later.",
                headers={"Retry-After": "1"},
            )
        stale = row.locked_until
        assert stale is not None
        lock = now + LOCK_TIMEOUT
        if not await repo.take_over(row.id, stale, lock):
            raise ProblemError(409, "idempotency_key_in_use", "Another retry took this Idempotency-Key over.")
        await uow.commit()
        return Claim(row.id, lock)


async def _fused(
    uow_factory: Callable[[], PaymentsUnitOfWork], req: IdempotentRequest, work: Work
) -> StoredResponse | None:
    """IDEM-5: the effect and its completed key in one commit; None when the key already exists."""
    async with uow_factory() as uow:
        status, body = await work(uow)
        text = _dumps(body)
        key_row = completed_idempotency_key(
            req.tenant_id, req.method, req.path, req.key, req.fingerprint, status, text, utcnow()
        )
        if await uow.commit_unless_exists(key_row):
            return StoredResponse(status, text, replayed=False)
    return None


def _dumps(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


async def run_idempotent(
    uow_factory: Callable[[], PaymentsUnitOfWork], req: IdempotentRequest, work: Work, *, local_effect: bool = False
) -> StoredResponse:
    """Run ``work`` at most once per key; replay its stored response to every retry.

    ``local_effect``: ``work`` only reads and queues writes and events on its unit of work (no calls
    to other services, nothing that cannot be undone by not committing), so it may run before the key
    is claimed (IDEM-5)."""
    if local_effect:
        done = await _fused(uow_factory, req, work)
        if done is not None:
            return done
    claim = await _claim(uow_factory, req)
    if isinstance(claim, StoredResponse):
        return claim
    try:
        async with uow_factory() as uow:
            status, body = await work(uow)
            text = _dumps(body)
            repo = IdempotencyRepository(uow.session, req.tenant_id)
            if not await repo.complete(claim.row_id, claim.lock, status, text, utcnow()):
                # Leaving the block without a commit rolls the effect back (the refund, its events).
                raise ClaimLost()
            await uow.commit()
            return StoredResponse(status, text, replayed=False)
    except BaseException:
        # The effect rolled back with its transaction, so the key is free for an honest retry (unless
        # a retry holds it now: its claim is left alone).
        async with uow_factory() as uow:
            await IdempotencyRepository(uow.session, req.tenant_id).release(claim.row_id, claim.lock)
            await uow.commit()
        raise
