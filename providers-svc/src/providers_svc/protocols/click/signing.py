"""Click's ``sign_string`` (PROTOCOLS.md §1.4): MD5 over a plain concatenation, lowercase hex.

It is computed over the strings exactly as posted. Re-serializing a parsed value ("1000.00" back from
Decimal("1000.0"), or an id without its leading zeros) would change the digest.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass


@dataclass(frozen=True)
class SignedFields:
    """The posted strings the signature covers. ``merchant_prepare_id`` is set for Complete only."""

    click_trans_id: str
    service_id: str
    merchant_trans_id: str
    amount: str
    action: str
    sign_time: str
    merchant_prepare_id: str | None = None

    def message(self, secret_key: str) -> str:
        """The string Click hashes: the secret sits after service_id, the prepare id after merchant_trans_id."""
        return "".join(
            (
                self.click_trans_id,
                self.service_id,
                secret_key,
                self.merchant_trans_id,
                self.merchant_prepare_id or "",
                self.amount,
                self.action,
                self.sign_time,
            )
        )


def sign(fields: SignedFields, secret_key: str) -> str:
    """The ``sign_string`` Click sends for ``fields`` (and the one the simulator must send)."""
    # MD5 is the protocol's choice, not ours; the secret inside the message is what authenticates.
    return hashlib.md5(fields.message(secret_key).encode()).hexdigest()  # noqa: S324


def verify(fields: SignedFields, secret_key: str, sign_string: str) -> bool:
    """True when ``sign_string`` is the signature of ``fields``, compared in constant time."""
    # The doc says lowercase; hex case carries no information, so uppercase from a client is not refused.
    # Compared as bytes: compare_digest raises on non-ASCII str, and a posted value may be anything.
    given = sign_string.lower().encode() if sign_string.isascii() else sign_string.encode()
    return hmac.compare_digest(sign(fields, secret_key).encode(), given)
