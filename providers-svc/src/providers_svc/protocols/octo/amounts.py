"""Our integer minor units ↔ Octo's decimal sums in major units (``total_sum``, refund ``amount``).

The conversion is exact (``Decimal``, never ``float``) and happens here only (ARCHITECTURE.md "Money").
Octo takes UZS and USD, both with two decimals of minor unit (tiyin, cents)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

EXPONENTS = {"UZS": 2, "USD": 2}


class AmountError(ValueError):
    """A sum Octo sent that is not an exact amount of the currency."""


def to_major(amount: int, currency: str) -> Decimal:
    """``150000`` UZS tiyin → ``Decimal("1500.00")``; serialised as a JSON number by the caller."""
    exponent = EXPONENTS[currency]
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise AmountError("an amount is a non-negative integer of minor units")
    return (Decimal(amount) / (Decimal(10) ** exponent)).quantize(Decimal(1).scaleb(-exponent))


# The largest power of ten a sum may reach (far beyond any payment; far below Decimal's limits).
MAX_MAGNITUDE = 18


def from_major(value: object, currency: str) -> int:
    """A sum as Octo sends it (a JSON number or a numeric string) → minor units, exactly; anything with
    more decimals than the currency has, or not finite, or negative, is an ``AmountError``."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise AmountError("a sum must be a number")
    try:
        # A float goes through its shortest repr (1500.1 stays 1500.1, not 1500.0999999...).
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value).strip())
    except InvalidOperation:
        raise AmountError("a sum must be a number") from None
    if not number.is_finite() or number < 0:
        raise AmountError("a sum must be a finite, non-negative number")
    # "1e999999999" would overflow the scaling below, and "1e-999999999" round to zero: no sum of
    # money is beyond 10^18 or finer than the currency's minor unit.
    if number and not -EXPONENTS[currency] <= number.adjusted() <= MAX_MAGNITUDE:
        raise AmountError("a sum out of range")
    minor = number.scaleb(EXPONENTS[currency])
    if minor != minor.to_integral_value():
        raise AmountError(f"a sum has more decimals than {currency} has")
    return int(minor)
