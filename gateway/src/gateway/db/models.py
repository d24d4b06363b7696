"""The gateway's tables: tenants and their hashed secrets."""

from __future__ import annotations

from datetime import datetime

from billing_runtime.db import UTCDateTime, new_metadata
from sqlalchemy import MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    metadata = new_metadata()


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    app_name: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    # argon2id PHC strings; the plain secret is never stored.
    secret_hash: Mapped[str] = mapped_column(String(255))
    # The secret replaced by the last rotation, accepted until previous_secret_expires_at.
    previous_secret_hash: Mapped[str | None] = mapped_column(String(255))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


metadata: MetaData = Base.metadata
