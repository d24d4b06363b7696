"""Tenant access tokens: HS256 JWTs with a key id, issued by ``/v1/auth/token`` and required on the
tenant routes. The algorithm is pinned here, never taken from the token."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Literal

from aiohttp import web
from billing_runtime.hs256 import jwt
from billing_runtime.problems import ProblemError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

ALGORITHM = "HS256"
PURPOSE = "tenant_access"
_REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub"]
# Bound on remembered verified tokens; past it the memo is simply emptied (a flood of distinct
# tokens costs only the verification it would have cost anyway).
_VERIFIED_MAX = 10_000


class TenantAccessClaims(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True, extra="ignore")

    sub: str
    tenant_id: str
    purpose: Literal["tenant_access"]
    # The generation of the tenant secret that minted the token (see Tenant.secret_generation). Tokens
    # minted before generations were recorded carry none: they came from the secret the migration
    # numbered 1, so they live as generation-1 tokens (until a rotation's grace ends), not die at deploy.
    gen: Annotated[int, Field(strict=True, ge=1)] = 1


@dataclass(frozen=True)
class TenantToken:
    """What a verified access token says: whose it is and which secret generation minted it. Whether
    the tenant still accepts that generation (and is not disabled) is the caller's check."""

    tenant_id: str
    generation: int


def unauthorized(code: str, detail: str) -> ProblemError:
    error = "invalid_request" if code == "unauthorized" else "invalid_token"
    return ProblemError(401, code, detail, headers={"WWW-Authenticate": f'Bearer error="{error}"'})


def missing_credentials() -> ProblemError:
    return unauthorized("unauthorized", "Authorization: Bearer <token> is required")


def invalid_token() -> ProblemError:
    return unauthorized("invalid_token", "The access token is invalid")


class TokenCodec:
    """Signs with the first (active) key; verifies with whichever key the token's ``kid`` names."""

    def __init__(self, keys: Mapping[str, str], *, issuer: str, audience: str, ttl: int) -> None:
        if not keys:
            raise ValueError("at least one signing key is required")
        self._keys = dict(keys)
        self._active_kid = next(iter(self._keys))
        self._issuer = issuer
        self._audience = audience
        self.ttl = ttl
        # token -> (tenant id, exp). Every tenant request carries the same token for up to ``ttl``,
        # and the HMAC check plus claim parsing is a large part of the gateway's work per request.
        # The keys never change for this codec, so a token that verified once verifies again until
        # it expires, which is checked on every use.
        self._verified: dict[str, tuple[TenantToken, int]] = {}

    def issue(self, tenant_id: str, generation: int, *, now: int | None = None) -> str:
        issued_at = int(time.time()) if now is None else now
        claims = {
            "sub": tenant_id,
            "tenant_id": tenant_id,
            "iss": self._issuer,
            "aud": self._audience,
            "iat": issued_at,
            "exp": issued_at + self.ttl,
            "purpose": PURPOSE,
            "gen": generation,
        }
        return jwt.encode(claims, self._keys[self._active_kid], algorithm=ALGORITHM, headers={"kid": self._active_kid})

    def verify(self, token: str) -> TenantToken:
        """What a well-signed, unexpired token says; a 401 problem for anything else."""
        known = self._verified.get(token)
        if known is not None and known[1] > time.time():
            return known[0]
        verified, exp = self._verify(token)
        if len(self._verified) >= _VERIFIED_MAX:
            self._verified.clear()
        self._verified[token] = (verified, exp)
        return verified

    def _verify(self, token: str) -> tuple[TenantToken, int]:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise invalid_token() from exc
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise invalid_token()
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError as exc:
            raise unauthorized("token_expired", "The access token has expired") from exc
        except jwt.PyJWTError as exc:
            raise invalid_token() from exc
        try:
            claims = TenantAccessClaims.model_validate(payload)
        except ValidationError as exc:
            raise invalid_token() from exc
        if claims.sub != claims.tenant_id:
            raise invalid_token()
        return TenantToken(claims.tenant_id, claims.gen), int(payload["exp"])


def bearer_token(request: web.Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header; None when there is no such header."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise missing_credentials()
    return token


def authenticate_tenant(request: web.Request, codec: TokenCodec) -> TenantToken:
    """The request's verified access token, or a 401 problem."""
    token = bearer_token(request)
    if token is None:
        raise missing_credentials()
    return codec.verify(token)
