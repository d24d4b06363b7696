"""Standard Webhooks v1 signing (https://www.standardwebhooks.com), pure stdlib.

Signature = base64(HMAC-SHA256(key, f"{msg_id}.{timestamp}.{body}")); the key is the base64 part of a
``whsec_`` secret. Several signatures may be sent (space separated) while a secret is being rotated.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
DEFAULT_TOLERANCE_SECONDS = 300


class WebhookVerificationError(ValueError):
    """The signature, timestamp or headers of a webhook are not acceptable."""


def generate_secret(num_bytes: int = 24) -> str:
    """Return a new ``whsec_`` secret holding ``num_bytes`` random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(num_bytes)).decode()


def _key(secret: str) -> bytes:
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(raw, validate=True)
    except ValueError as exc:
        raise WebhookVerificationError("secret is not valid base64") from exc


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return one ``v1,<base64>`` signature of ``body`` for ``msg_id`` at ``timestamp``."""
    to_sign = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), to_sign, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets_: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the ``webhook-signature`` value: one signature per active secret, space separated."""
    return " ".join(sign(s, msg_id, timestamp, body) for s in secrets_)


def verify(
    secret: str,
    msg_id: str,
    timestamp: str,
    signature: str,
    body: bytes,
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Raise ``WebhookVerificationError`` unless one ``v1`` signature matches and the timestamp is fresh."""
    try:
        ts = int(timestamp)
    except ValueError as exc:
        raise WebhookVerificationError("invalid timestamp") from exc
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance:
        raise WebhookVerificationError("timestamp outside tolerance")
    expected = sign(secret, msg_id, ts, body).split(",", 1)[1]
    for candidate in signature.split(" "):
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return
    raise WebhookVerificationError("no matching signature")
