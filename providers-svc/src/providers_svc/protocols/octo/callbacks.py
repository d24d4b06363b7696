"""Octo's callback to our notify_url (PROTOCOLS.md §3.4), and our answer to it.

The signature formula is not settled (the documents and the one public implementation disagree), so it
is an account setting, the documented reading by default; either way a callback only *triggers* a
status call, whose answer is what moves money (§3.4: "also re-check the status")."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

SignatureFormula = Literal["documented", "unique_key"]
_REQUIRED = ("shop_transaction_id", "octo_payment_UUID", "status", "signature")
_MAX_FIELD = 256


class CallbackRejected(Exception):
    """A callback we refuse (``reason``: bad_json, missing_field, bad_signature); counted by reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Callback:
    shop_transaction_id: str
    octo_payment_uuid: str
    status: str
    signature: str
    hash_key: str | None
    total_sum: object
    fields: Mapping[str, Any]  # everything Octo sent, kept as the raw event


def parse_callback(raw: bytes) -> Callback:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise CallbackRejected("bad_json") from None
    if not isinstance(body, dict):
        raise CallbackRejected("bad_json")
    for name in _REQUIRED:
        value = body.get(name)
        if not isinstance(value, str) or not value or len(value) > _MAX_FIELD:
            raise CallbackRejected("missing_field")
        if not value.isprintable():
            # A control character (a NUL above all) is in no id Octo sends, and no database stores it.
            raise CallbackRejected("bad_field")
    hash_key = body.get("hash_key")
    return Callback(
        shop_transaction_id=body["shop_transaction_id"],
        octo_payment_uuid=body["octo_payment_UUID"],
        status=body["status"],
        signature=body["signature"],
        hash_key=hash_key if isinstance(hash_key, str) and hash_key else None,
        total_sum=body.get("total_sum"),
        fields=body,
    )


def _sha1(text: str) -> str:
    # Octo's signature scheme is SHA-1 (40 hex digits); it is the provider's choice, not ours.
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def expected_signature(callback: Callback, *, secret: str, formula: SignatureFormula = "documented") -> str:
    """``documented``: sha1(sha1(secret + hash_key) + uuid + status), ``secret`` the shop secret;
    ``unique_key``: sha1(secret + uuid + status), ``secret`` the key Octo's team issues (paytechuz's
    reading; the account's ``unique_key`` credential, ``adapters.octo.signature_key_of``). Upper-case hex."""
    if formula == "documented":
        if callback.hash_key is None:
            raise CallbackRejected("bad_signature")
        inner = _sha1(secret + callback.hash_key)
        return _sha1(inner + callback.octo_payment_uuid + callback.status).upper()
    return _sha1(secret + callback.octo_payment_uuid + callback.status).upper()


def verify(callback: Callback, *, secret: str, formula: SignatureFormula = "documented") -> None:
    """Raise ``CallbackRejected("bad_signature")`` unless the signature is the expected one (any case)."""
    expected = expected_signature(callback, secret=secret, formula=formula)
    if not hmac.compare_digest(expected.encode(), callback.signature.upper().encode()):
        raise CallbackRejected("bad_signature")


def answer(accept: Literal["capture", "cancel"] | None) -> bytes:
    """HTTP 200 always; for ``waiting_for_capture`` the decision, else an empty object."""
    return json.dumps({"accept_status": accept} if accept is not None else {}).encode()
