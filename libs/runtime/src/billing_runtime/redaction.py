"""Masking secrets in log output. Whatever a log call passes (a message, its arguments, an exception's
text, a third-party library's record), the formatters run the finished text through ``redact`` before
it is written, so a credential that slips into a record still never reaches the log.

Two kinds of rule: values recognisable by their shape (Stripe keys, webhook secrets, JWTs, bearer and
basic credentials), and values of fields whose name says they are secret (``secret``, ``password``,
``token``, ``authorization``, ``*_key``, ...), in ``name=value``, ``name: value`` and JSON/dict forms."""

from __future__ import annotations

import re

MASK = "[REDACTED]"

_SHAPES = (
    # Standard Webhooks / Stripe signing secrets.
    (re.compile(r"whsec_[A-Za-z0-9+/=_-]+"), "whsec_" + MASK),
    # Stripe secret and restricted keys.
    (re.compile(r"\b(sk|rk)_(live|test)_[A-Za-z0-9]+"), r"\1_\2_" + MASK),
    # A JWT (tenant access tokens, X-Internal-Auth): header and payload are base64url JSON ("eyJ").
    (re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), MASK),
    # Credentials in an Authorization header (Payme's Basic auth, any bearer token).
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + MASK),
    # Credentials in a URL (amqp://user:password@host, postgresql://user:password@host).
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]+:)[^\s@/]+@"), r"\1" + MASK + "@"),
)

_FIELD = re.compile(
    r"""(?P<name>["']?[A-Za-z][\w-]*["']?)(?P<sep>\s*[:=]\s*)(?P<value>"[^"]*"|'[^']*'|[^\s"',;&})\]]+)"""
)
_SECRET_WORDS = ("secret", "password", "passwd", "token", "credential", "authorization", "cookie", "signature")
# Names ending in "key" that are not secrets (and are worth reading in a log).
_NOT_SECRET_KEYS = frozenset(
    {"routing_key", "routing-key", "idempotency_key", "idempotency-key", "sort_key", "kind_key"}
)


def _is_secret_name(name: str) -> bool:
    lowered = name.strip("\"'").lower()
    if any(word in lowered for word in _SECRET_WORDS):
        return True
    return (lowered == "key" or lowered.endswith(("_key", "-key", "apikey"))) and lowered not in _NOT_SECRET_KEYS


def _mask_field(match: re.Match[str]) -> str:
    if not _is_secret_name(match["name"]):
        return match[0]
    value = match["value"]
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{match['name']}{match['sep']}{quote}{MASK}{quote}"


def redact(text: str) -> str:
    """``text`` with every recognisable secret masked."""
    for pattern, replacement in _SHAPES:
        text = pattern.sub(replacement, text)
    return _FIELD.sub(_mask_field, text)
