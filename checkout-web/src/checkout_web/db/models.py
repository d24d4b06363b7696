"""checkout-web's own tables: the dashboard's sessions and its sign-in throttle. The payer's pages keep
no state."""

from __future__ import annotations

from datetime import datetime

from billing_runtime.db import UTCDateTime, new_metadata
from sqlalchemy import Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    metadata = new_metadata()


class DashboardSession(Base):
    """A signed-in tenant. The browser holds only the random token; this row is found by its SHA-256,
    so a copy of the table opens no session."""

    __tablename__ = "dashboard_sessions"
    __table_args__ = (Index("ix_dashboard_sessions_expires_at", "expires_at"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    app_name: Mapped[str] = mapped_column(String(64))
    # The tenant's access token (JWT), encrypted with CHECKOUT_SESSION_KEYS.
    access_token: Mapped[str] = mapped_column(Text)
    # The synchronizer token every form of this session carries.
    csrf_secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The absolute end: sign-in + CHECKOUT_SESSION_MAX_SECONDS, never past the access token's expiry.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LoginAttempts(Base):
    """Sign-in attempts in the current window of one key (``client:<address>`` or ``app:<name>``)."""

    __tablename__ = "dashboard_login_attempts"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer)


metadata: MetaData = Base.metadata
