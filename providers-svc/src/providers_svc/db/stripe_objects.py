"""The Stripe projections' table (``stripe_objects``: one row per Stripe object of each provider
account) and its reads. The writes are in ``db/stripe_writes.py``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from billing_runtime.db import UTCDateTime
from sqlalchemy import BigInteger, Boolean, ColumnElement, Index, Select, SmallInteger, String, select, text, tuple_
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from providers_svc.db.models import Base


class StripeObjectRow(Base):
    """The newest state seen of one Stripe object (domain/stripe_objects.py: which state is newest),
    keyed by our provider account, the object's kind and its Stripe id."""

    __tablename__ = "stripe_objects"
    __table_args__ = (
        # The tenant's lists, newest first, and the operator's.
        Index("ix_stripe_objects_tenant_list", "tenant_id", "object", "livemode", "created", "stripe_id"),
        Index("ix_stripe_objects_list", "object", "created", "stripe_id"),
        # Mirroring: an invoice's charges, a subscription's invoices.
        Index("ix_stripe_objects_invoice", "account_id", "invoice", postgresql_where=text("object = 'charge'")),
        # Linking: a PaymentIntent's charges, when an invoice_payment names the intent.
        Index(
            "ix_stripe_objects_payment_intent",
            "account_id",
            "payment_intent",
            postgresql_where=text("object = 'charge'"),
        ),
        Index(
            "ix_stripe_objects_subscription",
            "account_id",
            "subscription",
            postgresql_where=text("object = 'invoice'"),
        ),
    )

    account_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    object: Mapped[str] = mapped_column(String(16), primary_key=True)
    stripe_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    stripe_account: Mapped[str | None] = mapped_column(String(255))
    livemode: Mapped[bool] = mapped_column(Boolean)
    # None: attributed to no tenant, seen by the operator only.
    tenant_id: Mapped[str | None] = mapped_column(String(64))
    deleted: Mapped[bool] = mapped_column(Boolean)
    created: Mapped[datetime] = mapped_column(UTCDateTime())
    customer: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str | None] = mapped_column(String(64))
    amount: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    object_metadata: Mapped[dict[str, str]] = mapped_column(JSONB)
    subscription: Mapped[str | None] = mapped_column(String(255))
    # A charge's invoice: its own ``invoice`` field (API versions before 2025-03-31), else the invoice an
    # ``invoice_payment`` links its PaymentIntent or itself to (``stripe_invoice_payments``).
    invoice: Mapped[str | None] = mapped_column(String(255))
    # A charge's PaymentIntent (what an ``invoice_payment`` names).
    payment_intent: Mapped[str | None] = mapped_column(String(255))
    subscription_metadata: Mapped[dict[str, str] | None] = mapped_column(JSONB)
    # An invoice's own copy of its subscription's metadata (newer Stripe API versions), kept to fall
    # back on when the subscription's projection does not exist.
    own_subscription_metadata: Mapped[dict[str, str] | None] = mapped_column(JSONB)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # The version of the stored state (domain/stripe_objects.py: time, rank, progress, event id).
    version_time: Mapped[datetime] = mapped_column(UTCDateTime())
    version_rank: Mapped[int] = mapped_column(SmallInteger)
    version_progress: Mapped[int] = mapped_column(BigInteger)
    event_id: Mapped[str] = mapped_column(String(255, collation="C"))
    event_type: Mapped[str] = mapped_column(String(128))
    # Grows with every change of the row (a newer state, a mirrored metadata): the bus events' sequence.
    sequence: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class StripeInvoicePaymentRow(Base):
    """One payment (a PaymentIntent ``pi_…``, or a charge ``ch_…`` made without one) of one invoice of
    one provider account, as Stripe linked them (domain/stripe_invoice_payments.py). Never updated nor
    deleted: a link, once made, stays."""

    __tablename__ = "stripe_invoice_payments"

    account_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    payment: Mapped[str] = mapped_column(String(255), primary_key=True)
    invoice: Mapped[str] = mapped_column(String(255), primary_key=True)
    # Stripe's InvoicePayment (``inpay_…``); None when the link came from an older invoice's fields.
    invoice_payment: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


# (created, stripe_id, account_id): the lists' total order, newest first.
Position = tuple[datetime, str, str]


@dataclass(frozen=True)
class Scope:
    """Whose rows a read sees: a tenant's (in its mode), or the operator's (every row, narrowed by
    the optional account and tenant filters)."""

    tenant_id: str | None = None
    livemode: bool | None = None
    account_id: str | None = None

    @staticmethod
    def of_tenant(tenant_id: str, livemode: bool) -> Scope:
        return Scope(tenant_id=tenant_id, livemode=livemode)


@dataclass(frozen=True)
class ListFilter:
    customer: str | None = None
    status: str | None = None
    created_gt: datetime | None = None
    created_gte: datetime | None = None
    created_lt: datetime | None = None
    created_lte: datetime | None = None


class StripeObjectReads:
    """Reads of one kind of projected object. Every statement starts from ``_base``, filtered by the
    scope, so a tenant's read cannot reach another tenant's rows."""

    def __init__(self, session: AsyncSession, kind: str, scope: Scope) -> None:
        self._session = session
        self._kind = kind
        self._scope = scope

    def _base(self) -> Select[StripeObjectRow]:
        t = StripeObjectRow
        stmt = select(t).where(t.object == self._kind)
        if self._scope.tenant_id is not None:
            stmt = stmt.where(t.tenant_id == self._scope.tenant_id)
        if self._scope.livemode is not None:
            stmt = stmt.where(t.livemode.is_(self._scope.livemode))
        if self._scope.account_id is not None:
            stmt = stmt.where(t.account_id == self._scope.account_id)
        return stmt

    async def get(self, stripe_id: str) -> StripeObjectRow | None:
        # One Stripe object may be projected under two provider accounts of the same Stripe account
        # (an account replaced by another): the most recently stored wins.
        stmt = (
            self._base()
            .where(StripeObjectRow.stripe_id == stripe_id)
            .order_by(StripeObjectRow.updated_at.desc(), StripeObjectRow.account_id)
            .limit(1)
        )
        return (await self._session.execute(stmt)).scalar_one_or_none()

    async def position(self, stripe_id: str) -> Position | None:
        row = await self.get(stripe_id)
        return None if row is None else (row.created, row.stripe_id, row.account_id)

    async def page(
        self,
        filters: ListFilter,
        *,
        limit: int,
        starting_after: Position | None = None,
        ending_before: Position | None = None,
    ) -> list[StripeObjectRow]:
        """Newest first by (created, stripe_id, account_id), up to ``limit`` rows; ``ending_before``
        reads the rows just newer than the cursor backwards and turns them."""
        t = StripeObjectRow
        stmt = self._base().where(*_conditions(filters))
        position = tuple_(t.created, t.stripe_id, t.account_id)
        if ending_before is not None:
            stmt = stmt.where(position > tuple_(*ending_before)).order_by(t.created, t.stripe_id, t.account_id)
            rows = list((await self._session.execute(stmt.limit(limit))).scalars())
            return rows[::-1]
        if starting_after is not None:
            stmt = stmt.where(position < tuple_(*starting_after))
        stmt = stmt.order_by(t.created.desc(), t.stripe_id.desc(), t.account_id.desc()).limit(limit)
        return list((await self._session.execute(stmt)).scalars())


def _conditions(filters: ListFilter) -> Sequence[ColumnElement[bool]]:
    t = StripeObjectRow
    conditions: list[ColumnElement[bool]] = []
    if filters.customer is not None:
        conditions.append(t.customer == filters.customer)
    if filters.status is not None:
        conditions.append(t.status == filters.status)
    if filters.created_gt is not None:
        conditions.append(t.created > filters.created_gt)
    if filters.created_gte is not None:
        conditions.append(t.created >= filters.created_gte)
    if filters.created_lt is not None:
        conditions.append(t.created < filters.created_lt)
    if filters.created_lte is not None:
        conditions.append(t.created <= filters.created_lte)
    return conditions
