"""Every statement checkout-web runs against its database: dashboard sessions and sign-in counters.
Each method is one short transaction of its own (nothing spans a gateway call)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from billing_runtime.db import table_of
from billing_runtime.prepared import picked_once
from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from checkout_web.db.models import DashboardSession, LoginAttempts

SESSIONS = table_of(DashboardSession)
ATTEMPTS = table_of(LoginAttempts)


@dataclass(frozen=True)
class StoredSession:
    app_name: str
    access_token: str  # encrypted
    csrf_secret: str
    expires_at: datetime


class SessionStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(
        self,
        token_hash: str,
        *,
        app_name: str,
        access_token: str,
        csrf_secret: str,
        now: datetime,
        expires_at: datetime,
    ) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                SESSIONS.insert().values(
                    token_hash=token_hash,
                    app_name=app_name,
                    access_token=access_token,
                    csrf_secret=csrf_secret,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=expires_at,
                )
            )

    async def touch(self, token_hash: str, *, now: datetime, idle: timedelta) -> StoredSession | None:
        """The live session, its last-seen time moved to ``now``; None when unknown, idle or expired
        (one statement: a session past either limit is never used, even by concurrent requests)."""
        stmt = (
            update(SESSIONS)
            .where(
                SESSIONS.c.token_hash == token_hash,
                SESSIONS.c.expires_at > now,
                SESSIONS.c.last_seen_at > now - idle,
            )
            .values(last_seen_at=now)
            .returning(SESSIONS.c.app_name, SESSIONS.c.access_token, SESSIONS.c.csrf_secret, SESSIONS.c.expires_at)
        )
        async with self._engine.begin() as conn:
            row = (await conn.execute(stmt)).one_or_none()
        return None if row is None else StoredSession(row.app_name, row.access_token, row.csrf_secret, row.expires_at)

    async def delete(self, token_hash: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(SESSIONS).where(SESSIONS.c.token_hash == token_hash))

    async def purge(self, *, now: datetime, idle: timedelta, limit: int = 500) -> None:
        """Drop a batch of dead sessions (run at sign-in, so the table never grows without bound)."""
        dead = (
            select(SESSIONS.c.token_hash)
            .where(or_(SESSIONS.c.expires_at <= now, SESSIONS.c.last_seen_at <= now - idle))
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        async with self._engine.begin() as conn:
            await conn.execute(delete(SESSIONS).where(picked_once(SESSIONS.c.token_hash, dead)))


class LoginCounter:
    """Fixed-window counters of sign-in attempts, shared by every replica through the database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def hit(self, key: str, *, now: datetime, window: timedelta) -> tuple[int, datetime]:
        """Count one attempt; the attempts in the current window (this one included) and its start."""
        fresh = ATTEMPTS.c.window_started_at <= now - window
        stmt = (
            insert(ATTEMPTS)
            .values(key=key, window_started_at=now, attempts=1)
            .on_conflict_do_update(
                index_elements=[ATTEMPTS.c.key],
                set_={
                    # One atomic upsert: concurrent attempts on several replicas are all counted.
                    "attempts": case((fresh, 1), else_=ATTEMPTS.c.attempts + 1),
                    "window_started_at": case((fresh, now), else_=ATTEMPTS.c.window_started_at),
                },
            )
            .returning(ATTEMPTS.c.attempts, ATTEMPTS.c.window_started_at)
        )
        async with self._engine.begin() as conn:
            row = (await conn.execute(stmt)).one()
        return int(row.attempts), row.window_started_at

    async def reset(self, key: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(ATTEMPTS).where(ATTEMPTS.c.key == key))

    async def purge(self, *, now: datetime, window: timedelta) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(ATTEMPTS).where(ATTEMPTS.c.window_started_at <= now - window))
