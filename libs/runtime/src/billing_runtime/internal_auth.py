"""Service-to-service trust: the gateway (and payments, when it calls providers) signs a short-lived
HS256 token naming the tenant; a service accepts ``/internal`` and ``/v1`` calls only with one."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import jwt
from aiohttp import web

from billing_runtime.problems import ProblemError

INTERNAL_HEADER = "X-Internal-Auth"
_PURPOSE = "internal"
_ALGORITHM = "HS256"


@dataclass(frozen=True)
class Caller:
    """Who is calling: the calling service and the tenant the call acts for (None for platform calls)."""

    service: str
    tenant_id: str | None
    tenant_name: str | None = None


def sign_internal(
    secret: str,
    *,
    issuer: str,
    audience: str,
    tenant_id: str | None,
    tenant_name: str | None = None,
    ttl: int = 60,
) -> str:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + ttl,
        "purpose": _PURPOSE,
    }
    if tenant_id is not None:
        claims["tenant_id"] = tenant_id
    if tenant_name is not None:
        claims["tenant_name"] = tenant_name
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def verify_internal(secret: str, token: str, *, audience: str) -> Caller:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            audience=audience,
            options={"require": ["exp", "iss", "aud"]},
        )
    except jwt.PyJWTError as exc:
        raise ProblemError(401, "unauthorized", "Invalid internal credentials") from exc
    if claims.get("purpose") != _PURPOSE:
        raise ProblemError(401, "unauthorized", "Invalid internal credentials")
    return Caller(service=str(claims["iss"]), tenant_id=claims.get("tenant_id"), tenant_name=claims.get("tenant_name"))


caller_key = web.RequestKey("caller", Caller)


def internal_auth_middleware(
    secret: str, audience: str, *, public_prefixes: tuple[str, ...]
) -> Callable[[web.Request, Callable[[web.Request], Awaitable[web.StreamResponse]]], Awaitable[web.StreamResponse]]:
    """Require an internal token on every path except the public ones (health, provider callbacks...)."""

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path.startswith(public_prefixes):
            return await handler(request)
        token = request.headers.get(INTERNAL_HEADER)
        if not token:
            raise ProblemError(401, "unauthorized", "Missing internal credentials")
        request[caller_key] = verify_internal(secret, token, audience=audience)
        return await handler(request)

    return middleware


def require_tenant(request: web.Request) -> str:
    """The tenant the internal caller acts for; 401 when the call carries none."""
    caller = request.get(caller_key)
    if caller is None or caller.tenant_id is None:
        raise ProblemError(401, "unauthorized", "No tenant in the internal credentials")
    return caller.tenant_id
