"""No secret may default to a value in the repository (issue 9 item 3).

Every secret setting is checked when the settings are built: a process refuses to start, with a
message naming the environment variable, when a secret is missing, shorter than 32 bytes, or one of
the values this repository has ever published as a default. The embedded mode passes the ones it
generates and keeps (billing_embedded.secrets_file), which pass the same checks.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import SecretStr, ValidationError, ValidationInfo
from pydantic_settings import BaseSettings

# HMAC keys shorter than the hash output are brute-forceable (RFC 7518 §3.2); the same bar for tokens.
MIN_SECRET_BYTES = 32

# Every value a default, an example or a placeholder in this repository ever had. Keep adding to it:
# a value once published stays unusable, since someone may have deployed it.
PUBLISHED_SECRETS = frozenset(
    {
        "dev-internal-secret-change-me-0123456789",
        "dev-gateway-jwt-key-change-me-0123456789",
        "dev-sandbox-secret-change-me",
        "<32+ random bytes>",
        "<same>",
        "<random>",
    }
)

SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def env_name(settings_cls: type[BaseSettings], field: str) -> str:
    """The environment variable a field is read from (prefix + upper-case name)."""
    prefix = str(settings_cls.model_config.get("env_prefix") or "")
    return f"{prefix}{field}".upper()


def weakness(value: str, *, min_bytes: int = MIN_SECRET_BYTES) -> str | None:
    """Why ``value`` cannot be a secret, or None when it can."""
    if not value.strip():
        return "is not set"
    if value in PUBLISHED_SECRETS or value.strip() in PUBLISHED_SECRETS:
        return "is a value published in the repository; generate a new one"
    if len(value.encode()) < min_bytes:
        return f"must be at least {min_bytes} bytes"
    return None


def _plain(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return value if isinstance(value, str) else None


def required_secret(cls: type[BaseSettings], value: Any, info: ValidationInfo) -> SecretStr:
    """A ``mode="before"`` field validator (with ``validate_default=True`` and no usable default)."""
    assert info.field_name is not None
    plain = _plain(value)
    problem = "is required" if plain is None or not plain else weakness(plain)
    if problem is not None:
        raise ValueError(f"{env_name(cls, info.field_name)} {problem} ({HOW_TO_GENERATE})")
    return SecretStr(plain) if plain is not None else SecretStr("")


def optional_secret(cls: type[BaseSettings], value: Any, info: ValidationInfo) -> SecretStr | None:
    """As ``required_secret``, but unset (or empty) means the feature it guards is off."""
    plain = _plain(value)
    if not plain:
        return None
    return required_secret(cls, plain, info)


HOW_TO_GENERATE = "e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


def load_settings(factory: Callable[[], SettingsT], prog: str) -> SettingsT:
    """``factory()``, or exit with the settings' problems, one a line. The messages name variables and
    say what is wrong; they never echo a value (the settings hide their input in errors)."""
    try:
        return factory()
    except ValidationError as exc:
        lines = [f"{prog}: refusing to start, its settings are invalid:"]
        for error in exc.errors(include_input=False, include_url=False):
            where = ".".join(str(part) for part in error["loc"])
            lines.append(f"  {where}: {error['msg']}")
        print("\n".join(lines), file=sys.stderr)
        raise SystemExit(2) from None
