"""Payme's ``Authorization: Basic`` check (PROTOCOLS.md §2.1), and picking the account whose key it carries.

Payme's request names no merchant, so on a shared endpoint the key is what tells the accounts apart: every
candidate is compared, in constant time, and the loop never stops early, so timing tells nothing about which
candidate (or whether any) matched. Errors never carry the header, the key or the candidate that matched.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from providers_svc.protocols.payme.errors import PaymeError, PaymeErrorCode

# Given by Payme support; the official template says it is always "Paycom".
LOGIN = "Paycom"

AccountIdT = TypeVar("AccountIdT")


@dataclass(frozen=True)
class BasicCredentials:
    login: str
    password: str = field(repr=False)


def parse_basic_authorization(header: str | None) -> BasicCredentials:
    """The login and password of a ``Basic`` header; -32504 when it is missing or malformed."""
    if header is None:
        raise _denied()
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise _denied()
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise _denied() from None
    login, colon, password = decoded.partition(":")
    if not colon or not password:
        raise _denied()
    return BasicCredentials(login=login, password=password)


def authenticate(header: str | None, candidates: Iterable[tuple[AccountIdT, str]], *, login: str = LOGIN) -> AccountIdT:
    """The id of the one candidate ``(account_id, key)`` whose key the header carries; -32504 otherwise.

    Two candidates with the same key would make the request ambiguous, and it is refused the same way: the
    wiring must keep Payme keys unique among the accounts that share an endpoint."""
    credentials = parse_basic_authorization(header)
    password = credentials.password.encode("utf-8")
    login_ok = hmac.compare_digest(credentials.login.encode("utf-8"), login.encode("utf-8"))
    matches = [account_id for account_id, key in candidates if hmac.compare_digest(password, key.encode("utf-8"))]
    if not login_ok or len(matches) != 1:
        raise _denied()
    return matches[0]


def _denied() -> PaymeError:
    return PaymeError(PaymeErrorCode.INSUFFICIENT_PRIVILEGE)
