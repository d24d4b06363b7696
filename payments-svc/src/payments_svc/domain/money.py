"""Currency registry: ISO 4217 exponent and the amounts (in minor units) we accept per currency."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Currency:
    code: str
    exponent: int
    min_amount: int
    max_amount: int


# Minimums follow the card networks' practical floors (Stripe's table for USD/EUR/GBP/INR/JPY/HUF);
# UZS follows Payme/Click floors (1,000 so'm). Maximums keep every amount far inside BIGINT.
CURRENCIES: dict[str, Currency] = {
    c.code: c
    for c in (
        Currency("USD", 2, 50, 99_999_999),
        Currency("EUR", 2, 50, 99_999_999),
        Currency("GBP", 2, 30, 99_999_999),
        Currency("CHF", 2, 50, 99_999_999),
        Currency("HUF", 2, 100, 99_999_999_99),
        Currency("INR", 2, 50, 99_999_999),
        Currency("JPY", 0, 50, 99_999_999),
        Currency("KZT", 2, 200_00, 99_999_999_99),
        Currency("UZS", 2, 1_000_00, 100_000_000_00),
    )
}


def currency_of(code: str) -> Currency | None:
    return CURRENCIES.get(code)


def amount_problem(currency: Currency, amount: int) -> str | None:
    """Why ``amount`` is not acceptable in ``currency``, or None when it is."""
    if amount < currency.min_amount:
        return f"must be at least {currency.min_amount} (minor units of {currency.code})"
    if amount > currency.max_amount:
        return f"must be at most {currency.max_amount} (minor units of {currency.code})"
    return None
