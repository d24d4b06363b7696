"""PyJWT for the platform's HMAC-signed tokens, imported without cryptography when nothing else needs it.

Every token the platform signs or verifies is HS256 (tenant access tokens at the gateway, internal
tokens between services), which PyJWT computes with the standard library's ``hmac``. But PyJWT imports
cryptography at its own import whenever it is installed, to offer its RSA and EC algorithms, and
cryptography's Rust extension is about 10 MiB of a process's RSS (issue 16's memory target: gateway,
payments-svc and reconciliation-svc have no other use for it). So PyJWT is imported here with
cryptography hidden; it then offers the HMAC algorithms only. A process that has loaded cryptography
before (none does at start: the key ring imports it on its first use) gets a PyJWT that sees it, which
changes nothing for HS256.

Import ``jwt`` from here, never directly: whichever imports PyJWT first decides for the process.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def _hidden(module: str) -> Iterator[None]:
    """``import module`` raises ModuleNotFoundError (what PyJWT catches) inside; unless already loaded."""
    if module in sys.modules:
        yield
        return
    sys.modules[module] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if sys.modules.get(module, ...) is None:
            del sys.modules[module]


with _hidden("cryptography"):
    import jwt

__all__ = ["jwt"]
