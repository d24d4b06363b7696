"""The money boundary: Click speaks so'm as decimal strings, we hold UZS in integer tiyin (exponent 2).

Exact throughout: ``Decimal`` built from strings (its constructor never rounds) and compared with ``==``
(which never rounds either), so no context precision can make two different amounts look equal.
"""

from __future__ import annotations

import re
from decimal import Decimal

CURRENCY = "UZS"

# Plain unsigned decimals only. Click sends "1000", "1000.0" or "1000.00"; an exponent ("1e3"), a sign,
# spaces or separators are not amounts Click emits, and [0-9] keeps out the non-ASCII digits that
# Decimal() and \d would accept.
_SOM = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def parse_som(raw: str) -> Decimal | None:
    """The so'm amount in ``raw``, exactly, or None when ``raw`` is not a plain decimal."""
    if _SOM.fullmatch(raw) is None:
        return None
    return Decimal(raw)


def som_from_tiyin(tiyin: int) -> Decimal:
    """``tiyin`` as so'm with two decimals (100000 -> Decimal("1000.00"))."""
    return Decimal(f"{tiyin}E-2")


def som_matches_tiyin(som: Decimal, tiyin: int) -> bool:
    """True when ``som`` is exactly ``tiyin`` minor units ("1000", "1000.0", "1000.000" all match 100000)."""
    return som == som_from_tiyin(tiyin)


def format_som(tiyin: int) -> str:
    """The "N.NN" form of the pay URL (100000 -> "1000.00")."""
    return f"{som_from_tiyin(tiyin):f}"
