"""Masking secrets in log output. Whatever a log call passes (a message, its arguments, an exception's
text, a third-party library's record), the formatters run the finished text through ``redact`` before
it is written, so a credential that slips into a record still never reaches the log.

Two kinds of rule: values recognisable by their shape (Stripe keys, webhook secrets, JWTs, bearer and
basic credentials), and values of fields whose name says they are secret (``secret``, ``password``,
``token``, ``authorization``, ``*-auth``, ``*_key``, ...), in ``name=value``, ``name: value`` and JSON/dict forms."""

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
    # A payer's link: the checkout token in /c/<token> and a provider page's /pay/<provider>/<id>/<token>
    # is the payer's only credential.
    (re.compile(r"(/c/)[A-Za-z0-9_-]{16,}"), r"\1" + MASK),
    (re.compile(r"(/pay/[a-z]+/[A-Za-z0-9_-]+/)[A-Za-z0-9_-]{16,}"), r"\1" + MASK),
    # Credentials in a URL (amqp://user:password@host, postgresql://user:password@host).
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]+:)[^\s@/]+@"), r"\1" + MASK + "@"),
)

_SECRET_WORDS = ("secret", "password", "passwd", "token", "credential", "authorization", "cookie", "signature")
# Only names that say "secret" are matched, so a harmless field never swallows the one after it
# (``note: token=abc`` is two fields, and only the second is masked).
_SECRET_NAME = (
    r"[\w-]*(?:" + "|".join(_SECRET_WORDS) + r")[\w-]*"  # client_secret, access_token, Sandbox-Signature
    r"|[\w-]*[_-]auth"  # X-Internal-Auth
    r"|[\w-]*(?:[_-]key|apikey)|key"  # api_key, webhook-key, key (not routing_key and the like: below)
)
_FIELD = re.compile(
    r"""(?<![\w-])(?P<name>(?P<q>["']?)(?:""" + _SECRET_NAME + r""")(?P=q))"""
    r"""(?P<sep>\s*[:=]\s*)(?P<value>"[^"]*"|'[^']*'|[^\s"',;&})\]]+)""",
    re.IGNORECASE,
)
# Names ending in "key" that are not secrets (and are worth reading in a log).
_NOT_SECRET_KEYS = frozenset({"routing_key", "routing-key", "idempotency_key", "idempotency-key", "sort_key"})


def _mask_field(match: re.Match[str]) -> str:
    if match["name"].strip("\"'").lower() in _NOT_SECRET_KEYS:
        return match[0]
    value = match["value"]
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{match['name']}{match['sep']}{quote}{MASK}{quote}"


def redact(text: str) -> str:
    """``text`` with every recognisable secret masked."""
    for pattern, replacement in _SHAPES:
        text = pattern.sub(replacement, text)
    return _FIELD.sub(_mask_field, text)
