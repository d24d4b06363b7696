"""The only check a checkout token passes before it is put into a gateway URL."""

from __future__ import annotations

import re

_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,128}")
_PROVIDER = re.compile(r"[a-z0-9_-]{1,64}")


def is_valid_token(value: str) -> bool:
    """URL-safe base64 alphabet, 16 to 128 characters: anything else cannot be a token we issued."""
    return _TOKEN.fullmatch(value) is not None


def is_valid_provider_name(value: str) -> bool:
    return _PROVIDER.fullmatch(value) is not None
