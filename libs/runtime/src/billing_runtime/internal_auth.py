"""Service-to-service trust: the gateway (and payments, when it calls providers) signs a short-lived
HS256 token naming the tenant; a service accepts ``/internal`` and ``/v1`` calls only with one.

Each receiving service has a key of its own (its ``*_INTERNAL_SECRET``), held besides only by the
services allowed to call it, and accepts tokens only from the issuers it lists: a compromised
providers-svc holds no key that payments-svc or the dispatcher accepts, so it cannot act as the gateway.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Middleware

from billing_runtime.hs256 import jwt
from billing_runtime.log_context import bind
from billing_runtime.problems import ProblemError

INTERNAL_HEADER = "X-Internal-Auth"
_PURPOSE = "internal"
_ALGORITHM = "HS256"
# Bound on remembered verified tokens; past it the memo is simply emptied.
_VERIFIED_MAX = 10_000


@dataclass(frozen=True)
class Caller:
    """Who is calling: the calling service and the tenant the call acts for (None for platform calls)."""

    service: str
    tenant_id: str | None
    tenant_name: str | None = None
    # The tenant's mode (API.md "Test mode and live mode"): what it creates is live or test for life.
    livemode: bool = False
    # When the credential naming this caller expires (unix seconds).
    expires_at: int = 0


def sign_internal(
    secret: str,
    *,
    issuer: str,
    audience: str,
    tenant_id: str | None,
    tenant_name: str | None = None,
    livemode: bool = False,
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
    if tenant_id is not None:
        claims["livemode"] = livemode
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


class InternalSigner:
    """Signs internal tokens for one issuer and reuses each while more than half its life remains.

    ``keys`` maps each audience to the key that service verifies with (one ``str`` signs for every
    audience: tests and single-audience callers). Signing per request was a visible share of the
    gateway's work; a token names only the issuer, audience and tenant (no request data), so one per
    (audience, tenant) at a time is as good. The receiving side remembers the verified ones
    (``internal_auth_middleware``).
    """

    def __init__(self, keys: str | Mapping[str, str], *, issuer: str, ttl: int = 60, max_entries: int = 10_000) -> None:
        self._keys = keys
        self._issuer = issuer
        self._ttl = ttl
        self._max_entries = max_entries
        self._tokens: dict[tuple[str, str | None, str | None, bool], tuple[str, float]] = {}

    def token(
        self, *, audience: str, tenant_id: str | None, tenant_name: str | None = None, livemode: bool = False
    ) -> str:
        key = (audience, tenant_id, tenant_name, livemode)
        now = time.time()
        cached = self._tokens.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        secret = self._keys if isinstance(self._keys, str) else self._keys.get(audience)
        if secret is None:
            raise LookupError(f"{self._issuer} holds no internal key for {audience}")
        token = sign_internal(
            secret,
            issuer=self._issuer,
            audience=audience,
            tenant_id=tenant_id,
            tenant_name=tenant_name,
            livemode=livemode,
            ttl=self._ttl,
        )
        if len(self._tokens) >= self._max_entries:
            self._tokens.clear()
        self._tokens[key] = (token, now + self._ttl / 2)
        return token


def claimed_issuer(token: str) -> str | None:
    """The ``iss`` a token claims, read WITHOUT verifying it: only to choose the key that must then
    verify it (``internal_auth_middleware``'s ``issuer_secrets``)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    issuer = claims.get("iss")
    return issuer if isinstance(issuer, str) else None


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
    return Caller(
        service=str(claims["iss"]),
        tenant_id=claims.get("tenant_id"),
        tenant_name=claims.get("tenant_name"),
        livemode=claims.get("livemode") is True,
        expires_at=int(claims["exp"]),
    )


caller_key = web.RequestKey("caller", Caller)


def internal_auth_middleware(
    secret: str,
    audience: str,
    *,
    public_prefixes: tuple[str, ...],
    issuers: Collection[str],
    confined: Mapping[str, Collection[str]] | None = None,
    issuer_secrets: Mapping[str, str] | None = None,
) -> Middleware:
    """Require an internal token on every path except the public ones (health, provider callbacks...),
    signed with ``secret`` for ``audience`` by one of ``issuers`` (the services allowed to call).

    ``confined`` maps an issuer to the only routes (their templates, e.g.
    ``/internal/payments/{payment_id}/sync``) it may reach, as platform calls naming no tenant: a
    token of that issuer naming a tenant is refused (401), and so is any other route (403). A
    service that calls only a few routes of another (reconciliation) then cannot reach the rest,
    however those handlers check their callers (the checkout routes take calls naming no tenant).

    ``issuer_secrets`` gives an issuer a key of its own: its tokens verify with that key only, and
    ``secret`` no longer verifies a token claiming that issuer. A service holding the shared key (the
    gateway's, payments-svc's) then cannot mint that issuer's tokens, and the issuer holding only its
    own key cannot claim to be anyone else: ``iss`` is trusted only as far as the key behind it.

    Verified tokens are remembered until they expire (callers reuse them, see ``InternalSigner``):
    the secret is fixed for this middleware, so a token that verified once verifies again until its
    ``exp``, which is checked on every use.
    """
    allowed = frozenset(issuers)
    own_keys = dict(issuer_secrets or {})
    if not set(own_keys) <= allowed:
        raise ValueError(f"keys given for issuers not allowed to call: {sorted(set(own_keys) - allowed)}")
    confinement = {issuer: frozenset(routes) for issuer, routes in (confined or {}).items()}
    if not allowed:
        raise ValueError("an internal API must name the services allowed to call it")
    verified: dict[str, Caller] = {}

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path.startswith(public_prefixes):
            return await handler(request)
        token = request.headers.get(INTERNAL_HEADER)
        if not token:
            raise ProblemError(401, "unauthorized", "Missing internal credentials")
        caller = verified.get(token)
        if caller is None or caller.expires_at <= time.time():
            issuer = claimed_issuer(token)
            key = own_keys.get(issuer, secret) if issuer is not None else secret
            caller = verify_internal(key, token, audience=audience)
            if caller.service not in allowed:
                raise ProblemError(401, "unauthorized", "Invalid internal credentials")
            if len(verified) >= _VERIFIED_MAX:
                verified.clear()
            verified[token] = caller
        routes = confinement.get(caller.service)
        if routes is not None:
            _check_confined(request, caller, routes)
        request[caller_key] = caller
        # For the rest of the request, its access line included (the request id middleware, outermost,
        # restores the context when the request ends).
        bind(tenant_id=caller.tenant_id)
        return await handler(request)

    return middleware


def _check_confined(request: web.Request, caller: Caller, routes: frozenset[str]) -> None:
    if caller.tenant_id is not None:
        raise ProblemError(401, "unauthorized", "Invalid internal credentials")
    resource = request.match_info.route.resource
    if resource is None or resource.canonical not in routes:
        raise ProblemError(403, "forbidden", f"The {caller.service} service may not call this route")


def require_platform_caller(request: web.Request, service: str) -> None:
    """403 unless the internal caller is ``service`` acting for no tenant (a platform call)."""
    caller = request.get(caller_key)
    if caller is None or caller.service != service or caller.tenant_id is not None:
        raise ProblemError(403, "forbidden", f"Only the {service} service may call this route")


def require_tenant(request: web.Request) -> str:
    """The tenant the internal caller acts for; 401 when the call carries none."""
    caller = request.get(caller_key)
    if caller is None or caller.tenant_id is None:
        raise ProblemError(401, "unauthorized", "No tenant in the internal credentials")
    tenant_id: str = caller.tenant_id
    return tenant_id
