"""``provider_refunds``: one row per refund payments-svc asked us to make (its id is our refund id, so a
redelivered request finds the row it made), and its queries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from billing_runtime.db import UTCDateTime
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Index,
    Integer,
    String,
    Text,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from providers_svc.db.models import Base
from providers_svc.domain.refunds import Refund, RefundStatus


class ProviderRefundRow(Base):
    """A refund of one of our provider transactions, as the provider has (or has not yet) answered it."""

    __tablename__ = "provider_refunds"
    __table_args__ = (
        CheckConstraint("status IN ('requested', 'pending', 'succeeded', 'failed')", name="status"),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_provider_refunds_transaction", "provider_transaction_id"),
        # Only refunds still to be sent are indexed: the retrier scans nothing that was answered.
        Index("ix_provider_refunds_due", "next_attempt_at", postgresql_where=text("status = 'requested'")),
        # A statement's refund lines, an account's page at a time (``db.statements.answered_refunds``).
        Index("ix_provider_refunds_statement", "account_id", "updated_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    livemode: Mapped[bool] = mapped_column(Boolean)
    payment_id: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(32))
    provider_transaction_id: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[str | None] = mapped_column(String(40))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    # The status the last ``provider.refund.updated`` of this refund carried (None: none yet); written
    # with the status in the same transaction as the event, so "verdict not yet published" is visible.
    published_status: Mapped[str | None] = mapped_column(String(16))
    provider_refund_id: Mapped[str | None] = mapped_column(String(255))
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(Text)
    # Calls made to the provider (answered or not).
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    # Whoever is calling the provider about a requested refund holds it until then: two callers never
    # send one refund concurrently (a provider without an idempotency key, Click, would see two).
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the worker's retrier asks again about a refund left requested (the provider unreachable).
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    provider_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


def to_refund(row: ProviderRefundRow) -> Refund:
    return Refund(
        id=row.id,
        tenant_id=row.tenant_id,
        livemode=row.livemode,
        payment_id=row.payment_id,
        provider=row.provider,
        provider_transaction_id=row.provider_transaction_id,
        account_id=row.account_id,
        amount=row.amount,
        currency=row.currency,
        reason=row.reason,
        status=RefundStatus(row.status),
        published_status=row.published_status,
        provider_refund_id=row.provider_refund_id,
        failure_code=row.failure_code,
        failure_message=row.failure_message,
        attempts=row.attempts,
        provider_updated_at=row.provider_updated_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        claim_token=row.claim_token,
    )


@dataclass(frozen=True)
class NewRefund:
    refund_id: str
    tenant_id: str
    livemode: bool
    payment_id: str
    provider: str
    provider_transaction_id: str
    account_id: str | None
    amount: int
    currency: str
    reason: str | None


@dataclass(frozen=True)
class RefundVerdict:
    """What the provider said about a refund, to be recorded (and published) once."""

    status: RefundStatus
    provider_refund_id: str | None
    failure_code: str | None
    failure_message: str | None
    provider_updated_at: datetime


class RefundRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create_once(self, new: NewRefund, now: datetime, first_retry: datetime) -> bool:
        """Insert the refund unless its id exists (a redelivered request); True when inserted. The
        retrier leaves it to its first sender until ``first_retry``."""
        values: dict[str, Any] = {
            "id": new.refund_id,
            "tenant_id": new.tenant_id,
            "livemode": new.livemode,
            "payment_id": new.payment_id,
            "provider": new.provider,
            "provider_transaction_id": new.provider_transaction_id,
            "account_id": new.account_id,
            "amount": new.amount,
            "currency": new.currency,
            "reason": new.reason,
            "status": RefundStatus.REQUESTED.value,
            "attempts": 0,
            "next_attempt_at": first_retry,
            "created_at": now,
            "updated_at": now,
        }
        result = await self._session.execute(
            pg_insert(ProviderRefundRow).values(**values).on_conflict_do_nothing(index_elements=["id"])
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def get(self, refund_id: str, *, for_update: bool = False) -> Refund | None:
        row = await self._row(refund_id, for_update=for_update)
        return to_refund(row) if row is not None else None

    async def _row(self, refund_id: str, *, for_update: bool) -> ProviderRefundRow | None:
        stmt = select(ProviderRefundRow).where(ProviderRefundRow.id == refund_id)
        if for_update:
            stmt = stmt.with_for_update()
        result = await self._session.execute(stmt.execution_options(populate_existing=True))
        return result.scalar_one_or_none()

    async def live_for_transaction(self, txn_id: str) -> list[Refund]:
        """The transaction's refunds that did not fail (asked, pending or made)."""
        stmt = select(ProviderRefundRow).where(
            ProviderRefundRow.provider_transaction_id == txn_id,
            ProviderRefundRow.status != RefundStatus.FAILED.value,
        )
        return [to_refund(row) for row in (await self._session.execute(stmt)).scalars()]

    async def claim(self, refund_id: str, token: str, now: datetime, lease: timedelta) -> bool:
        """Take the right to call the provider about a requested refund until ``now + lease``; False
        when it is no longer requested or another caller holds it."""
        result = await self._session.execute(
            update(ProviderRefundRow)
            .where(
                ProviderRefundRow.id == refund_id,
                ProviderRefundRow.status == RefundStatus.REQUESTED.value,
                or_(ProviderRefundRow.claimed_until.is_(None), ProviderRefundRow.claimed_until < now),
            )
            .values(
                claim_token=token,
                claimed_until=now + lease,
                attempts=ProviderRefundRow.attempts + 1,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def release(self, refund_id: str, token: str, now: datetime, next_attempt_at: datetime) -> None:
        """The provider gave no answer: the refund stays requested, asked again from ``next_attempt_at``."""
        await self._session.execute(
            update(ProviderRefundRow)
            .where(ProviderRefundRow.id == refund_id, ProviderRefundRow.claim_token == token)
            .values(claim_token=None, claimed_until=None, next_attempt_at=next_attempt_at, updated_at=now)
            .execution_options(synchronize_session=False)
        )

    async def record(self, refund_id: str, verdict: RefundVerdict, now: datetime) -> None:
        """Store a verdict (the caller decided, under the row's lock, that it may move the refund) and
        mark it published: the caller emits its event in the same unit of work."""
        await self._session.execute(
            update(ProviderRefundRow)
            .where(ProviderRefundRow.id == refund_id)
            .values(
                status=verdict.status.value,
                published_status=verdict.status.value,
                # A verdict without the provider's id (a refusal, a lost answer) never forgets the one
                # an earlier verdict gave: it names the refund at the provider for every later check.
                provider_refund_id=func.coalesce(verdict.provider_refund_id, ProviderRefundRow.provider_refund_id),
                failure_code=verdict.failure_code,
                failure_message=verdict.failure_message,
                provider_updated_at=verdict.provider_updated_at,
                claim_token=None,
                claimed_until=None,
                next_attempt_at=None,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )

    async def mark_published(self, refund_id: str, status: RefundStatus, now: datetime) -> None:
        await self._session.execute(
            update(ProviderRefundRow)
            .where(ProviderRefundRow.id == refund_id)
            .values(published_status=status.value, updated_at=now)
            .execution_options(synchronize_session=False)
        )

    async def due(self, now: datetime, *, limit: int) -> list[str]:
        """Requested refunds whose next attempt is due and that nobody holds."""
        stmt = (
            select(ProviderRefundRow.id)
            .where(
                ProviderRefundRow.status == RefundStatus.REQUESTED.value,
                ProviderRefundRow.next_attempt_at <= now,
                or_(ProviderRefundRow.claimed_until.is_(None), ProviderRefundRow.claimed_until < now),
            )
            .order_by(ProviderRefundRow.next_attempt_at)
            .limit(limit)
        )
        return list((await self._session.execute(stmt)).scalars())
