"""The Octo simulator's own table: the fake Octo server's payments (``simulators/octo_store``), in
PostgreSQL so every api process of the distributed mode serves the same fake Octo."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from billing_runtime.db import UTCDateTime
from sqlalchemy import BigInteger, Boolean, Numeric, String, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from providers_svc.db.models import Base


class OctoSimulatorPaymentRow(Base):
    """One payment at the fake Octo: what Octo would hold (status, sums, refunds by shop_refund_id)."""

    __tablename__ = "octo_simulator_payments"
    # Octo dedupes prepare_payment on the shop's transaction id.
    __table_args__ = (UniqueConstraint("shop_id", "shop_transaction_id"),)

    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    shop_id: Mapped[int] = mapped_column(BigInteger)
    shop_transaction_id: Mapped[str] = mapped_column(String(64))
    total_sum: Mapped[Decimal] = mapped_column(Numeric(20, 2))
    currency: Mapped[str] = mapped_column(String(3))
    auto_capture: Mapped[bool] = mapped_column(Boolean)
    test: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(32))
    # shop_refund_id → amount (a decimal string), changed under the row lock.
    refunds: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    return_url: Mapped[str | None] = mapped_column(Text)
    notify_url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
