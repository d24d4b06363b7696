"""Jinja filters of the dashboard: money and times as people read them, from the API's raw values."""

from __future__ import annotations

from datetime import UTC, datetime

from checkout_web.money import format_amount

# ISO 4217 exponents other than 2 among the currencies the platform takes (the API gives minor units).
_EXPONENTS = {"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3}


def money(amount: object, currency: object) -> str:
    if isinstance(amount, bool) or not isinstance(amount, int) or not isinstance(currency, str):
        return "—"
    try:
        return format_amount(abs(amount), currency, _EXPONENTS.get(currency, 2))
    except (TypeError, ValueError):
        return f"{amount} {currency}"


def when(value: object) -> str:
    """An RFC 3339 time of the API as ``2026-12-06 02:09:49 UTC``; anything else as given."""
    if not isinstance(value, str) or not value:
        return "—"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


FILTERS = {"money": money, "when": when}
