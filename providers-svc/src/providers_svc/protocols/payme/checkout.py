"""The URL that sends a payer to Payme's checkout (PROTOCOLS.md §2.6): GET on the checkout host with the
base64 of ``m=<merchant_id>;ac.<field>=<payment id>;a=<tiyin>[;l=<lang>][;c=<return url>]``.

Payme splits the decoded string on ";" and each part at its first "=", and documents no escape. Our ids
never hold a ";" (one there is refused). A return URL may: its ";" is written ``%3B``, the one spelling
of it that cannot end the ``c`` value; RFC 3986 §2.2 makes ``;`` a reserved character, so a server may
in principle tell the two apart, but our pages (the hosted checkout's return page included) read them
alike, so whether Payme percent-decodes ``c`` or redirects to it as given, the payer lands on the same
page."""

from __future__ import annotations

import base64
from typing import Literal

PRODUCTION_URL = "https://checkout.paycom.uz/"
TEST_URL = "https://test.paycom.uz/"

Language = Literal["ru", "uz", "en"]
Environment = Literal["test", "production"]


def checkout_url(
    *,
    merchant_id: str,
    account_field: str,
    payment_id: str,
    amount: int,
    environment: Environment,
    return_url: str | None = None,
    language: Language | None = None,
) -> str:
    """``amount`` is in tiyin (``amounts.to_tiyin``). ``environment`` is the provider account's: a ``test``
    account (TEST_KEY) is known only to the sandbox host."""
    if isinstance(amount, bool) or amount <= 0:
        raise ValueError("a Payme amount is a positive integer of tiyin")
    # A ";" in a value, or an "=" in a name, would be read as another parameter: refused in our ids.
    _check("merchant_id", merchant_id, forbidden=";=")
    _check("account_field", account_field, forbidden=";=")
    _check("payment_id", payment_id, forbidden=";")
    parts = [f"m={merchant_id}", f"ac.{account_field}={payment_id}", f"a={amount}"]
    if language is not None:
        parts.append(f"l={language}")
    if return_url is not None:
        _check("return_url", return_url, forbidden="")
        parts.append(f"c={return_url.replace(';', '%3B')}")
    encoded = base64.b64encode(";".join(parts).encode("utf-8")).decode("ascii")
    return (TEST_URL if environment == "test" else PRODUCTION_URL) + encoded


def _check(name: str, value: str, *, forbidden: str) -> None:
    if not value or any(char in value for char in forbidden):
        free = f" and free of {' and '.join(forbidden)}" if forbidden else ""
        raise ValueError(f"{name} must be non-empty{free}")
