"""Amounts in minor units rendered for people. Integer arithmetic only: a float never touches money."""

from __future__ import annotations

MAX_EXPONENT = 4


def currency_symbol(currency: str) -> str | None:
    """A symbol only where it is unambiguous; "$" or "¥" alone would be wrong for CAD or CNY."""
    match currency:
        case "USD":
            return "$"
        case "EUR":
            return "€"
        case "GBP":
            return "£"
        case "JPY":
            return "¥"
        case _:
            return None


def format_amount(amount: int, currency: str, exponent: int) -> str:
    """``5000, "USD", 2`` → ``"$50.00"``; ``150000, "UZS", 2`` → ``"1 500.00 UZS"``; ``500, "JPY", 0`` → ``"¥500"``.

    Symbol currencies group thousands with "," (English style); the others with a space and the code
    after the number, which reads correctly whatever the payer's locale.
    """
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError("amount must be an integer number of minor units")
    if amount < 0:
        raise ValueError("a payable amount is never negative")
    if isinstance(exponent, bool) or not isinstance(exponent, int) or not 0 <= exponent <= MAX_EXPONENT:
        raise ValueError(f"currency exponent must be an integer from 0 to {MAX_EXPONENT}")
    units, minor = divmod(amount, 10**exponent)
    symbol = currency_symbol(currency)
    whole = f"{units:,}".replace(",", "," if symbol else " ")
    number = f"{whole}.{minor:0{exponent}d}" if exponent else whole
    return f"{symbol}{number}" if symbol else f"{number} {currency}"
