"""Every query of webhook-dispatcher. Tenant repositories filter by tenant in their base statement so
no query can forget tenancy; the dispatcher's cross-tenant queries (claiming, metrics) are named so."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from billing_runtime.paging import Cursor
from sqlalchemy import ColumnElement, Select, func, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from webhook_dispatcher.db.models import Attempt, Delivery, Endpoint, WebhookEvent
from webhook_dispatcher.domain.giving_up import given_up_reason


class UnknownCursor(Exception):
    """The cursor names no object of this tenant's list."""


def _keyset(model: Any, anchor: tuple[datetime, str], direction: str) -> ColumnElement[bool]:
    # (created_at, id) is the list's order (newest first); the index (tenant_id, created_at, id)
    # serves it, so a page deep in the list costs the same as the first one.
    key = tuple_(model.created_at, model.id)
    return key < tuple_(*anchor) if direction == "starting_after" else key > tuple_(*anchor)


async def _page(
    session: AsyncSession,
    model: Any,
    tenant_id: str,
    stmt: Select[Any],
    *,
    limit: int,
    offset: int,
    cursor: Cursor | None,
) -> builtins.list[Any]:
    """One page of ``stmt`` (already filtered), newest first, by offset or by cursor. The cursor's
    object is found by id within the tenant alone: filters narrow the page, not where it starts."""
    newest_first = (model.created_at.desc(), model.id.desc())
    if cursor is None:
        return list((await session.execute(stmt.order_by(*newest_first).limit(limit).offset(offset))).scalars())
    anchor = (
        await session.execute(
            select(model.created_at, model.id).where(model.tenant_id == tenant_id, model.id == cursor.object_id)
        )
    ).first()
    if anchor is None:
        raise UnknownCursor(cursor.object_id)
    stmt = stmt.where(_keyset(model, (anchor[0], anchor[1]), cursor.direction))
    if cursor.direction == "starting_after":
        return list((await session.execute(stmt.order_by(*newest_first).limit(limit))).scalars())
    # The page just before the anchor: the nearest newer rows, read upwards and shown newest first.
    rows = (await session.execute(stmt.order_by(model.created_at.asc(), model.id.asc()).limit(limit))).scalars()
    return list(reversed(list(rows)))


class EndpointRepository:
    def __init__(self, session: AsyncSession, tenant_id: str) -> None:
        self.session = session
        self.tenant_id = tenant_id

    def _base(self) -> Select[Endpoint]:
        return select(Endpoint).where(Endpoint.tenant_id == self.tenant_id, Endpoint.deleted_at.is_(None))

    async def get(self, endpoint_id: str, *, for_update: bool = False) -> Endpoint | None:
        stmt = self._base().where(Endpoint.id == endpoint_id)
        if for_update:
            # NO KEY UPDATE: these rows' keys never change, and it does not block foreign-key inserts.
            stmt = stmt.with_for_update(key_share=True)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def clear_failing(self, endpoint_id: str, now: datetime) -> None:
        """Record a success on an endpoint that is marked failing; a no-op (and no row lock) otherwise."""
        await self.session.execute(
            update(Endpoint)
            .where(
                Endpoint.tenant_id == self.tenant_id, Endpoint.id == endpoint_id, Endpoint.failing_since.is_not(None)
            )
            .values(failing_since=None, last_success_at=now)
        )

    async def list(self, *, limit: int, offset: int, cursor: Cursor | None = None) -> builtins.list[Endpoint]:
        return await _page(
            self.session, Endpoint, self.tenant_id, self._base(), limit=limit, offset=offset, cursor=cursor
        )

    async def count(self) -> int:
        """Endpoints the tenant has (enabled or not; deleted ones do not count)."""
        stmt = (
            select(func.count())
            .select_from(Endpoint)
            .where(Endpoint.tenant_id == self.tenant_id, Endpoint.deleted_at.is_(None))
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def lock_tenant(self) -> None:
        """Serialize this tenant's endpoint creations until the transaction ends, so two concurrent
        creations cannot both pass the limit."""
        await self.session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext('webhook_endpoints:' || :tenant))"),
            {"tenant": self.tenant_id},
        )

    async def enabled(self) -> builtins.list[Endpoint]:
        stmt = self._base().where(Endpoint.enabled.is_(True)).order_by(Endpoint.created_at, Endpoint.id)
        return list((await self.session.execute(stmt)).scalars())

    def add(self, endpoint: Endpoint) -> None:
        self.session.add(endpoint)

    async def fail_pending(self, endpoint: Endpoint, now: datetime) -> int:
        """Give up the pending deliveries of ``endpoint``, just disabled or deleted (the reason each
        records follows from its state); returns how many."""
        reason = given_up_reason(deleted=endpoint.deleted_at is not None, disabled_reason=endpoint.disabled_reason)
        result = await self.session.execute(
            update(Delivery)
            .where(
                Delivery.tenant_id == self.tenant_id,
                Delivery.endpoint_id == endpoint.id,
                Delivery.status == "pending",
            )
            .values(status="failed", next_attempt_at=None, last_error=reason, updated_at=now)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


class DeliveryRepository:
    def __init__(self, session: AsyncSession, tenant_id: str) -> None:
        self.session = session
        self.tenant_id = tenant_id

    def _base(self) -> Select[Delivery]:
        return select(Delivery).where(Delivery.tenant_id == self.tenant_id)

    async def get(self, delivery_id: str, *, for_update: bool = False) -> Delivery | None:
        stmt = self._base().where(Delivery.id == delivery_id)
        if for_update:
            # NO KEY UPDATE: these rows' keys never change, and it does not block foreign-key inserts.
            stmt = stmt.with_for_update(key_share=True)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def list(
        self,
        *,
        limit: int,
        offset: int,
        endpoint_id: str | None,
        status: str | None,
        event_type: str | None,
        event_id: str | None = None,
        cursor: Cursor | None = None,
    ) -> builtins.list[Delivery]:
        stmt = self._base()
        if event_id is not None:
            # uq_webhook_deliveries_event_endpoint leads with event_id: an event's few rows, indexed.
            stmt = stmt.where(Delivery.event_id == event_id)
        if endpoint_id is not None:
            stmt = stmt.where(Delivery.endpoint_id == endpoint_id)
        if status is not None:
            stmt = stmt.where(Delivery.status == status)
        if event_type is not None:
            stmt = stmt.where(Delivery.event_type == event_type)
        return await _page(self.session, Delivery, self.tenant_id, stmt, limit=limit, offset=offset, cursor=cursor)

    async def attempts(self, delivery_id: str) -> builtins.list[Attempt]:
        stmt = (
            select(Attempt)
            .join(Delivery, Delivery.id == Attempt.delivery_id)
            .where(Delivery.tenant_id == self.tenant_id, Attempt.delivery_id == delivery_id)
            .order_by(Attempt.number)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def event(self, event_id: str) -> WebhookEvent | None:
        stmt = select(WebhookEvent).where(WebhookEvent.tenant_id == self.tenant_id, WebhookEvent.id == event_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def resend_batch(
        self,
        endpoint_id: str,
        *,
        since: datetime,
        until: datetime,
        after: tuple[datetime, str] | None,
        statuses: builtins.list[str],
        limit: int,
        now: datetime,
    ) -> tuple[int, tuple[datetime, str] | None]:
        """Queue one manual attempt for each of the next ``limit`` of the endpoint's deliveries created
        in [since, until) after ``after`` (oldest first) whose status is in ``statuses``. Returns how
        many were queued and where the next batch starts (None when this was the last)."""
        key = tuple_(Delivery.created_at, Delivery.id)
        batch = (
            select(Delivery.id, Delivery.created_at)
            .where(
                Delivery.tenant_id == self.tenant_id,
                Delivery.endpoint_id == endpoint_id,
                Delivery.created_at >= since,
                Delivery.created_at < until,
            )
            .order_by(Delivery.created_at, Delivery.id)
            .limit(limit)
        )
        if after is not None:
            batch = batch.where(key > tuple_(*after))
        # The window is walked over every status (the statuses filter goes on the UPDATE), so the
        # keyset always moves on even when a batch holds none to replay.
        rows = (await self.session.execute(batch)).all()
        if not rows:
            return 0, None
        result = await self.session.execute(
            update(Delivery)
            .where(
                Delivery.tenant_id == self.tenant_id,
                Delivery.id.in_([r.id for r in rows]),
                Delivery.status.in_(statuses),
            )
            .values(status="pending", manual=True, resume_at=None, next_attempt_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        last = (rows[-1].created_at, rows[-1].id)
        return int(result.rowcount), (last if len(rows) == limit else None)  # type: ignore[attr-defined]

    def add_event(self, event: WebhookEvent) -> None:
        self.session.add(event)

    def add(self, delivery: Delivery) -> None:
        self.session.add(delivery)


async def due_stats(session: AsyncSession, now: datetime) -> tuple[int, datetime | None]:
    """Cross-tenant (metrics): how many deliveries are due now, and the oldest pending one's due time."""
    stmt = select(func.count(), func.min(Delivery.next_attempt_at)).where(
        Delivery.status == "pending", Delivery.next_attempt_at <= now
    )
    count, oldest = (await session.execute(stmt)).one()
    return int(count), oldest
