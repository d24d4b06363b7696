"""ISO 4217 exponents, and a provider's decimal amount turned into our minor units exactly.

Providers write money in their own units: Payme in tiyin (already minor units), Click and Octo in so'm
with decimals, Stripe's reports in major units with decimals. Converting with ``Decimal`` and refusing
more decimals than the currency has means no amount is ever rounded into a match (or a mismatch).
"""

from __future__ import annotations

import re
from decimal import Decimal


def _codes(text: str) -> list[str]:
    return text.split()


# ISO 4217 minor-unit exponents of the currencies our payments take (payments-svc's registry) and of
# those a provider may settle in. A currency not listed is refused rather than guessed.
EXPONENTS: dict[str, int] = {
    **dict.fromkeys(
        _codes(
            "AED AUD BRL CAD CHF CNY CZK DKK EUR GBP GEL HKD HUF INR KGS KZT MXN NOK NZD PLN"
            " RUB SAR SEK SGD TJS TMT TRY UAH USD UZS ZAR"
        ),
        2,
    ),
    **dict.fromkeys(_codes("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF"), 0),
    **dict.fromkeys(_codes("BHD IQD JOD KWD LYD OMR TND"), 3),
}

# Digits, at most one point, an optional leading minus: no exponents, no thousands separators, no
# "NaN" (all of which Decimal would accept).
_DECIMAL = re.compile(r"-?[0-9]{1,18}(\.[0-9]{1,6})?")
_INTEGER = re.compile(r"-?[0-9]{1,18}")


class AmountError(ValueError):
    """An amount or currency a statement cannot be matched with; the message says why."""


def exponent_of(currency: str) -> int:
    try:
        return EXPONENTS[currency]
    except KeyError:
        raise AmountError(f"unknown currency {currency!r}") from None


def currency_code(raw: str) -> str:
    """An ISO 4217 code in upper case (Stripe writes them in lower case)."""
    code = raw.strip().upper()
    exponent_of(code)
    return code


def decimal_to_minor(raw: str, currency: str) -> int:
    """``"50000.00"`` UZS → 5000000: a decimal in major units, exactly, in minor units."""
    text = raw.strip()
    if not _DECIMAL.fullmatch(text):
        raise AmountError(f"{raw!r} is not a decimal amount (digits and one '.', no separators)")
    exponent = exponent_of(currency)
    value = Decimal(text)
    minor = value.scaleb(exponent)
    if minor != minor.to_integral_value():
        raise AmountError(f"{raw!r} has more decimals than {currency} has ({exponent})")
    return int(minor)


def integer_minor(raw: str) -> int:
    """An amount already in minor units (Payme's tiyin): digits only."""
    text = raw.strip()
    if not _INTEGER.fullmatch(text):
        raise AmountError(f"{raw!r} is not a whole number of minor units")
    return int(text)
