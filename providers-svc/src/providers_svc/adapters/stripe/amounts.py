"""Our minor units ↔ Stripe's ``amount``.

Our amounts are in the ISO 4217 minor unit (payments-svc's currency registry: the ISO exponent).
Stripe's ``amount`` is in "the smallest currency unit", which is ISO's for almost every currency; the
exceptions (Stripe's "zero-decimal" and "special cases" tables) are converted here and nowhere else:

- ``ISK``: ISO exponent 0, but Stripe counts it in hundredths (backwards compatibility): times 100.
- ``MGA``: ISO exponent 2 (iraimbilanja), Stripe zero-decimal: divided by 100, refused unless exact.
- ``BHD JOD KWD OMR TND`` (three decimals): same unit, but Stripe takes only multiples of 10.
- ``HUF TWD``: two decimals for charges (Stripe's payouts round them; nothing to convert here).
- Every other currency, zero-decimal ones such as JPY, KRW, CLP, UGX, VND included: the same number.
"""

from __future__ import annotations

# (our exponent, Stripe's exponent) where they differ.
_SHIFTED: dict[str, tuple[int, int]] = {"ISK": (0, 2), "MGA": (2, 0)}
_THREE_DECIMALS = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})


class StripeAmountError(ValueError):
    """An amount of ours that Stripe cannot charge exactly in that currency."""


def to_stripe(amount: int, currency: str) -> int:
    """Stripe's ``amount`` for ``amount`` of our minor units, or ``StripeAmountError``."""
    code = currency.upper()
    if code in _SHIFTED:
        ours, theirs = _SHIFTED[code]
        if theirs >= ours:
            return amount * int(10 ** (theirs - ours))
        step = int(10 ** (ours - theirs))
        if amount % step:
            raise StripeAmountError(f"Stripe takes {code} in whole units only")
        return amount // step
    if code in _THREE_DECIMALS and amount % 10:
        raise StripeAmountError(f"Stripe takes {code} in multiples of 10 minor units only")
    return amount


def from_stripe(amount: int, currency: str) -> int | None:
    """Our minor units for a Stripe ``amount``; None when it is no whole amount of ours (a mismatch)."""
    code = currency.upper()
    if code not in _SHIFTED:
        return amount
    ours, theirs = _SHIFTED[code]
    if ours >= theirs:
        return amount * int(10 ** (ours - theirs))
    step = int(10 ** (theirs - ours))
    return None if amount % step else amount // step
