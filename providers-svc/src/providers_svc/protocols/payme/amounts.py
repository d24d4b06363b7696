"""Where our amounts become Payme's and back: the only conversion between the two.

Our amounts are integer minor units plus an ISO 4217 code; Payme speaks tiyin, the minor unit of UZS
(exponent 2: 1 so'm = 100 tiyin). So a UZS amount in minor units already *is* tiyin, and every other
currency is refused here rather than sent to Payme with the wrong meaning.
"""

from __future__ import annotations

CURRENCY = "UZS"


def to_tiyin(amount: int, currency: str) -> int:
    """Our ``amount`` (minor units of ``currency``) in tiyin; ValueError for a currency Payme cannot charge."""
    if currency != CURRENCY:
        raise ValueError(f"Payme charges only {CURRENCY}, not {currency!r}")
    if isinstance(amount, bool) or amount <= 0:
        raise ValueError("a Payme amount is a positive integer")
    return amount


def from_tiyin(tiyin: int) -> tuple[int, str]:
    """A Payme amount as our (minor units, currency)."""
    return tiyin, CURRENCY
