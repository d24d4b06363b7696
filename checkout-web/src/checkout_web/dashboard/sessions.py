"""Dashboard sessions: the browser holds a random token in an HttpOnly cookie; the database holds its
SHA-256, the tenant's access token encrypted at rest, and the session's CSRF secret."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiohttp import web
from billing_runtime.key_ring import KeyRing, UndecryptableError

from checkout_web.dashboard.clients import Network, came_over_https
from checkout_web.db.store import SessionStore

SESSION_COOKIE = "dashboard_session"
# Before sign-in there is no session to bind a CSRF token to: the sign-in form's token is bound to
# this cookie's random value instead (a forged cross-site sign-in has neither).
SIGN_IN_COOKIE = "dashboard_sign_in"
COOKIE_PATH = "/dashboard"
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class Session:
    token_hash: str
    app_name: str
    access_token: str
    csrf_token: str
    expires_at: datetime


class SessionExpired(Exception):
    """The request carried a session cookie, but the session is gone (idle, expired, signed out)."""


class CsrfRefused(Exception):
    """A POST without the form's CSRF token, or with a wrong one."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def now_utc() -> datetime:
    return datetime.now(UTC)


@dataclass
class Sessions:
    store: SessionStore
    ring: KeyRing
    # Keyed with a value derived from the session keys, for the sign-in form's token.
    sign_in_key: bytes
    idle: timedelta
    max_age: timedelta
    trusted: tuple[Network, ...]

    async def start(
        self, response: web.StreamResponse, request: web.Request, *, app_name: str, access_token: str, expires_in: int
    ) -> None:
        token = secrets.token_urlsafe(32)
        now = now_utc()
        # Never beyond the access token: a session cannot outlive what it stands for.
        expires_at = min(now + self.max_age, now + timedelta(seconds=max(expires_in, 0)))
        await self.store.purge(now=now, idle=self.idle)
        previous = request.cookies.get(SESSION_COOKIE)
        if previous:
            # A sign-in replaces the browser's session: the old token must not stay usable.
            await self.store.delete(hash_token(previous))
        await self.store.create(
            hash_token(token),
            app_name=app_name,
            access_token=self.ring.encrypt(access_token),
            csrf_secret=secrets.token_urlsafe(32),
            now=now,
            expires_at=expires_at,
        )
        self.set_cookie(response, request, SESSION_COOKIE, token, max_age=None)
        response.del_cookie(SIGN_IN_COOKIE, path=COOKIE_PATH)

    async def current(self, request: web.Request) -> Session | None:
        """The request's live session (its last-seen time moved on), None when it carries no cookie;
        raises ``SessionExpired`` when it carries one whose session is gone."""
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            return None
        token_hash = hash_token(token)
        stored = await self.store.touch(token_hash, now=now_utc(), idle=self.idle)
        if stored is None:
            raise SessionExpired
        try:
            access_token = self.ring.decrypt(stored.access_token)
        except UndecryptableError:
            # Its key was dropped: the session cannot be used, the tenant signs in again.
            await self.store.delete(token_hash)
            raise SessionExpired from None
        return Session(token_hash, stored.app_name, access_token, stored.csrf_secret, stored.expires_at)

    async def end(self, response: web.StreamResponse, session: Session | None) -> None:
        if session is not None:
            await self.store.delete(session.token_hash)
        self.clear(response)

    def clear(self, response: web.StreamResponse) -> None:
        response.del_cookie(SESSION_COOKIE, path=COOKIE_PATH)

    def set_cookie(
        self, response: web.StreamResponse, request: web.Request, name: str, value: str, *, max_age: int | None
    ) -> None:
        response.set_cookie(
            name,
            value,
            path=COOKIE_PATH,
            httponly=True,
            samesite="Lax",
            secure=came_over_https(request, self.trusted),
            max_age=max_age,
        )

    # The sign-in form's CSRF token.
    def sign_in_token(self, nonce: str) -> str:
        return hmac.new(self.sign_in_key, nonce.encode(), hashlib.sha256).hexdigest()

    def check_sign_in_token(self, request: web.Request, sent: object) -> None:
        nonce = request.cookies.get(SIGN_IN_COOKIE)
        if not nonce or not isinstance(sent, str) or not hmac.compare_digest(self.sign_in_token(nonce), sent):
            raise CsrfRefused


def check_csrf(session: Session, sent: object) -> None:
    if not isinstance(sent, str) or not hmac.compare_digest(session.csrf_token.encode(), sent.encode()):
        raise CsrfRefused


def sign_in_key(session_keys: str) -> bytes:
    first = session_keys.split(",")[0].strip()
    return hashlib.sha256(b"checkout-web dashboard sign-in form\x00" + first.encode()).digest()
