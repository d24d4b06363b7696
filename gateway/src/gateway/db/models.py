"""The gateway's tables: tenants and their hashed secrets."""

from __future__ import annotations

from datetime import datetime

from billing_runtime.db import UTCDateTime, new_metadata
from sqlalchemy import Boolean, Integer, MetaData, String, false, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    metadata = new_metadata()


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    app_name: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    # Test or live for life (API.md "Test mode and live mode"): set at creation, never changed.
    livemode: Mapped[bool] = mapped_column(Boolean, server_default=false())
    # A disabled tenant's secrets and access tokens are all refused; its payments still settle.
    disabled: Mapped[bool] = mapped_column(Boolean, server_default=false())
    # Exact origins (gateway.origins) that may frame its hosted checkout and receive its messages;
    # none: the checkout cannot be framed at all.
    allowed_origins: Mapped[list[str]] = mapped_column(ARRAY(String(255)), server_default=text("'{}'"))
    # Which secret is current: 1 at creation, +1 per rotation. Access tokens carry the generation of
    # the secret that minted them, so those of a rotated-out secret die with its grace period.
    secret_generation: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    # argon2id PHC strings; the plain secret is never stored.
    secret_hash: Mapped[str] = mapped_column(String(255))
    # The secret replaced by the last rotation, accepted until previous_secret_expires_at.
    previous_secret_hash: Mapped[str | None] = mapped_column(String(255))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


metadata: MetaData = Base.metadata
