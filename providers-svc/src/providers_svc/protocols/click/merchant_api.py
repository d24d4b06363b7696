"""Requests to Click's Merchant API (PROTOCOLS.md §1.10), built but not sent: method, URL, headers, body.

The ``Auth`` header is ``merchant_user_id:sha1(timestamp + secret_key):timestamp``. The timestamp is
given, never read from a clock here, so the same inputs always give the same header.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from typing import Literal
from urllib.parse import quote

from providers_svc.protocols.click.credentials import ClickCredentials

BASE_URL = "https://api.click.uz/v2/merchant"

# "10-digit Unix seconds": from 2001-09-09 to 2286-11-20.
_MIN_TIMESTAMP = 1_000_000_000
_MAX_TIMESTAMP = 9_999_999_999


@dataclass(frozen=True)
class MerchantApiRequest:
    method: Literal["GET", "DELETE"]
    path: str  # below BASE_URL, each segment already percent-encoded
    auth: str  # the Auth header's value

    @property
    def url(self) -> str:
        return BASE_URL + self.path

    @property
    def headers(self) -> dict[str, str]:
        return {"Auth": self.auth, "Accept": "application/json", "Content-Type": "application/json"}

    @property
    def body(self) -> None:
        """Status and reversal carry everything in the path; neither sends a body."""
        return None


def auth_header(credentials: ClickCredentials, timestamp: int) -> str:
    """The ``Auth`` header value for a request made at ``timestamp`` (Unix seconds)."""
    if not _MIN_TIMESTAMP <= timestamp <= _MAX_TIMESTAMP:
        raise ValueError("timestamp must be 10-digit Unix seconds")
    # SHA-1 is the protocol's choice, not ours.
    digest = hashlib.sha1(f"{timestamp}{credentials.secret_key}".encode()).hexdigest()  # noqa: S324
    return f"{credentials.merchant_user_id}:{digest}:{timestamp}"


def payment_status_by_merchant_trans_id(
    credentials: ClickCredentials, merchant_trans_id: str, day: date, *, timestamp: int
) -> MerchantApiRequest:
    """GET the status of the payment for our ``merchant_trans_id`` made on ``day`` (Click's date)."""
    if not merchant_trans_id:
        raise ValueError("merchant_trans_id must not be empty")
    path = f"/payment/status_by_mti/{credentials.service_id}/{_segment(merchant_trans_id)}/{day.isoformat()}"
    return MerchantApiRequest("GET", path, auth_header(credentials, timestamp))


def payment_status(credentials: ClickCredentials, payment_id: int, *, timestamp: int) -> MerchantApiRequest:
    """GET the status of Click's payment ``payment_id``.

    Taken to be the callbacks' ``click_paydoc_id`` (as other integrations use it); PROTOCOLS.md does not
    say which id it is, so confirm it against Click's sandbox before relying on it.
    """
    path = f"/payment/status/{credentials.service_id}/{_payment_id(payment_id)}"
    return MerchantApiRequest("GET", path, auth_header(credentials, timestamp))


def payment_reversal(credentials: ClickCredentials, payment_id: int, *, timestamp: int) -> MerchantApiRequest:
    """DELETE: reverse (refund in full) Click's payment ``payment_id``. Click documents no partial reversal."""
    path = f"/payment/reversal/{credentials.service_id}/{_payment_id(payment_id)}"
    return MerchantApiRequest("DELETE", path, auth_header(credentials, timestamp))


def _segment(value: str) -> str:
    # Nothing safe: a "/" or "?" in an order id must not change which resource is addressed.
    return quote(value, safe="")


def _payment_id(payment_id: int) -> int:
    if payment_id <= 0:
        raise ValueError("payment_id must be positive")
    return payment_id
