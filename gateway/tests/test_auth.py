from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from billing_runtime.internal_auth import sign_internal
from billing_runtime.problems import ProblemError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from gateway.auth import TenantToken, TokenCodec

from .support import INTERNAL_SECRET, JWT_AUDIENCE, JWT_ISSUER, JWT_KEYS, FakeUpstream, Gateway, bearer, problem

TENANT = "ten_00000000000000000000000000"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(tenant: str = TENANT, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": tenant,
        "tenant_id": tenant,
        "iss": JWT_ISSUER,
        "aud": JWT_AUDIENCE,
        "iat": now,
        "exp": now + 600,
        "purpose": "tenant_access",
        "gen": 1,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _hs256(claims: dict[str, Any], key: str = JWT_KEYS["k2"], kid: str | None = "k2") -> str:
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(claims, key, algorithm="HS256", headers=headers)


def _raw(header: dict[str, Any], claims: dict[str, Any], key: bytes | None) -> str:
    """A token assembled by hand, so its header can claim anything."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest() if key else b""
    return f"{signing_input}.{_b64(signature)}"


def _rs256(claims: dict[str, Any]) -> str:
    # Signed with cryptography itself: the PyJWT of a service process has no RSA (billing_runtime.hs256).
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signing_input = f"{_b64(json.dumps({'alg': 'RS256', 'kid': 'k2'}).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = private.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


def _rsa_public_pem() -> str:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


# name → builder of an Authorization header value (the tenant id is filled in by the test)
ATTACKS: dict[str, Callable[[str], str]] = {
    "alg none": lambda t: "Bearer " + _raw({"alg": "none", "typ": "JWT", "kid": "k2"}, _claims(t), None),
    "alg None, signature kept": lambda t: (
        "Bearer " + _raw({"alg": "None", "kid": "k2"}, _claims(t), JWT_KEYS["k2"].encode())
    ),
    "HS256 with a wrong key": lambda t: "Bearer " + _hs256(_claims(t), key="x" * 40),
    "HS256 with the other kid's key": lambda t: "Bearer " + _hs256(_claims(t), key=JWT_KEYS["k1"], kid="k2"),
    "RS256 header, HMAC signature with our key": lambda t: (
        "Bearer " + _raw({"alg": "RS256", "kid": "k2"}, _claims(t), JWT_KEYS["k2"].encode())
    ),
    "RS256 signed with an attacker key": lambda t: "Bearer " + _rs256(_claims(t)),
    "HS384 with our key": lambda t: (
        "Bearer " + jwt.encode(_claims(t), JWT_KEYS["k2"] * 2, algorithm="HS384", headers={"kid": "k2"})
    ),
    "unknown kid": lambda t: "Bearer " + _hs256(_claims(t), kid="k9"),
    "no kid": lambda t: "Bearer " + _hs256(_claims(t), kid=None),
    "kid not a string": lambda t: "Bearer " + _raw({"alg": "HS256", "kid": 2}, _claims(t), JWT_KEYS["k2"].encode()),
    "other audience": lambda t: "Bearer " + _hs256(_claims(t, aud="payments")),
    "other issuer": lambda t: "Bearer " + _hs256(_claims(t, iss="someone-else")),
    "expired": lambda t: "Bearer " + _hs256(_claims(t, iat=int(time.time()) - 700, exp=int(time.time()) - 100)),
    "no exp": lambda t: "Bearer " + _hs256(_claims(t, exp=None)),
    "no iat": lambda t: "Bearer " + _hs256(_claims(t, iat=None)),
    "no aud": lambda t: "Bearer " + _hs256(_claims(t, aud=None)),
    "wrong purpose": lambda t: "Bearer " + _hs256(_claims(t, purpose="internal")),
    "no purpose": lambda t: "Bearer " + _hs256(_claims(t, purpose=None)),
    "sub differs from tenant_id": lambda t: "Bearer " + _hs256(_claims(t, sub="ten_someoneelse0000000000000")),
    "tenant_id not a string": lambda t: "Bearer " + _hs256(_claims(t, tenant_id=123)),
    "internal token": lambda t: (
        "Bearer " + sign_internal(INTERNAL_SECRET, issuer="gateway", audience=JWT_AUDIENCE, tenant_id=t)
    ),
    "unknown tenant": lambda t: "Bearer " + _hs256(_claims("ten_zzzzzzzzzzzzzzzzzzzzzzzzzz")),
    "garbage": lambda t: "Bearer not-a-jwt",
    "three garbage segments": lambda t: "Bearer a.b.c",
    "header not an object": lambda t: "Bearer " + _b64(b"[1]") + "." + _b64(b"{}") + ".",
    "payload not json": lambda t: "Bearer " + _b64(b'{"alg":"HS256","kid":"k2"}') + "." + _b64(b"\xff") + ".x",
    "token with spaces": lambda t: "Bearer abc def",
    "empty bearer": lambda t: "Bearer ",
    "bare token": lambda t: _hs256(_claims(t)),
    "basic scheme": lambda t: "Basic " + base64.b64encode(b"shop-1:sk_x").decode(),
    "non-ascii": lambda t: "Bearer " + "é" * 10,
    "huge": lambda t: "Bearer " + "a" * 6000,
}


class TestTenantTokenAttacks:
    @pytest.mark.postgres
    async def test_valid_token_is_accepted_by_either_key(self, gateway: Gateway, payments: FakeUpstream) -> None:
        tenant = await gateway.create_tenant()
        for kid in ("k1", "k2"):
            token = _hs256(_claims(tenant["id"]), key=JWT_KEYS[kid], kid=kid)
            resp = await gateway.client.get("/v1/payments", headers=bearer(token))
            assert resp.status == 200, await resp.text()
        assert len(payments.received) == 2

    @pytest.mark.postgres
    @pytest.mark.parametrize("attack", list(ATTACKS))
    async def test_forged_or_wrong_token_returns_401(
        self, gateway: Gateway, payments: FakeUpstream, attack: str
    ) -> None:
        tenant = await gateway.create_tenant()
        authorization = ATTACKS[attack](tenant["id"])
        for path in ("/v1/payments", "/v1/refunds/rfnd_1", "/v1/events"):
            resp = await gateway.client.get(path, headers={"Authorization": authorization})
            await problem(resp, 401, {"unauthorized", "invalid_token", "token_expired"})
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert payments.received == []

    @pytest.mark.postgres
    async def test_missing_authorization_returns_401(self, gateway: Gateway, payments: FakeUpstream) -> None:
        resp = await gateway.client.post("/v1/payments", json={"amount": 5000})
        await problem(resp, 401, "unauthorized")
        assert payments.received == []

    @pytest.mark.postgres
    async def test_expired_token_says_so(self, gateway: Gateway) -> None:
        tenant = await gateway.create_tenant()
        token = _hs256(_claims(tenant["id"], iat=int(time.time()) - 700, exp=int(time.time()) - 100))
        resp = await gateway.client.get("/v1/payments", headers=bearer(token))
        await problem(resp, 401, "token_expired")


class TestTokenCodec:
    def _codec(self, **overrides: Any) -> TokenCodec:
        values: dict[str, Any] = {"keys": JWT_KEYS, "issuer": JWT_ISSUER, "audience": JWT_AUDIENCE, "ttl": 60}
        values.update(overrides)
        return TokenCodec(**values)

    def test_round_trip(self) -> None:
        codec = self._codec()
        assert codec.verify(codec.issue(TENANT, 1)) == TenantToken(TENANT, 1)

    def test_retired_key_no_longer_verifies(self) -> None:
        old = self._codec(keys={"k1": JWT_KEYS["k1"]})
        token = old.issue(TENANT, 1)
        assert self._codec().verify(token) == TenantToken(TENANT, 1)
        with pytest.raises(ProblemError) as caught:
            self._codec(keys={"k2": JWT_KEYS["k2"]}).verify(token)
        assert caught.value.status == 401

    def test_rsa_public_key_is_never_usable_as_an_hmac_secret(self) -> None:
        # The classic confusion: the verifier's RSA public key reused as the HS256 secret.
        pem = _rsa_public_pem()
        codec = self._codec(keys={"k2": pem})
        forged = _raw({"alg": "HS256", "kid": "k2"}, _claims(), pem.encode())
        with pytest.raises(ProblemError):
            codec.verify(forged)

    def test_issued_token_expires_after_ttl(self) -> None:
        codec = self._codec()
        token = codec.issue(TENANT, 1, now=int(time.time()) - 61)
        with pytest.raises(ProblemError) as caught:
            codec.verify(token)
        assert caught.value.code == "token_expired"

    def test_remembered_token_still_expires(self) -> None:
        codec = self._codec()
        token = codec.issue(TENANT, 1, now=int(time.time()) - 59)
        assert codec.verify(token) == TenantToken(TENANT, 1)
        time.sleep(1.1)
        with pytest.raises(ProblemError) as caught:
            codec.verify(token)
        assert caught.value.code == "token_expired"

    def test_no_keys_is_refused(self) -> None:
        with pytest.raises(ValueError, match="signing key"):
            self._codec(keys={})
