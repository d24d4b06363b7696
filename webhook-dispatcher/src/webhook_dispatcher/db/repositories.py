"""Every query of webhook-dispatcher. Tenant repositories filter by tenant in their base statement so
no query can forget tenancy; the dispatcher's cross-tenant queries (claiming, metrics) are named so."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from webhook_dispatcher.db.models import Attempt, Delivery, Endpoint, WebhookEvent
from webhook_dispatcher.domain.giving_up import given_up_reason


class EndpointRepository:
    def __init__(self, session: AsyncSession, tenant_id: str) -> None:
        self.session = session
        self.tenant_id = tenant_id

    def _base(self) -> Select[tuple[Endpoint]]:
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

    async def list(self, *, limit: int, offset: int) -> list[Endpoint]:
        stmt = self._base().order_by(Endpoint.created_at.desc(), Endpoint.id.desc()).limit(limit).offset(offset)
        return list((await self.session.execute(stmt)).scalars())

    async def enabled(self) -> list[Endpoint]:
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

    def _base(self) -> Select[tuple[Delivery]]:
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
    ) -> list[Delivery]:
        stmt = self._base()
        if endpoint_id is not None:
            stmt = stmt.where(Delivery.endpoint_id == endpoint_id)
        if status is not None:
            stmt = stmt.where(Delivery.status == status)
        if event_type is not None:
            stmt = stmt.where(Delivery.event_type == event_type)
        stmt = stmt.order_by(Delivery.created_at.desc(), Delivery.id.desc()).limit(limit).offset(offset)
        return list((await self.session.execute(stmt)).scalars())

    async def attempts(self, delivery_id: str) -> list[Attempt]:
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

    async def resend_since(self, endpoint_id: str, since: datetime, statuses: list[str], now: datetime) -> int:
        """Queue one manual attempt for each of the endpoint's deliveries created since ``since``."""
        result = await self.session.execute(
            update(Delivery)
            .where(
                Delivery.tenant_id == self.tenant_id,
                Delivery.endpoint_id == endpoint_id,
                Delivery.created_at >= since,
                Delivery.status.in_(statuses),
            )
            .values(status="pending", manual=True, resume_at=None, next_attempt_at=now, updated_at=now)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

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
