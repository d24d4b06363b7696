"""The sandbox provider: its adapter, and its wire protocol (``Sandbox-Signature`` and the callback body).

The "bank" behind it (payer page, decisions, callbacks) is ``providers_svc.sandbox``; the adapter talks to
it through ``SandboxBankClient`` the way a real adapter talks to its provider's HTTP API.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from providers_svc.adapters.base import (
    CaptureResult,
    ProviderRejectedError,
    RefundResult,
    StartResult,
    StatusResult,
)
from providers_svc.domain.refunds import simulated_outcome
from providers_svc.domain.transactions import Transaction, TransactionStatus

NAME = "sandbox"
SIGNATURE_HEADER = "Sandbox-Signature"
DEFAULT_TOLERANCE = 300
FAILURE_MESSAGES = {"card_declined": "The sandbox bank declined the card."}

_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


class InvalidSignatureError(ValueError):
    """The ``Sandbox-Signature`` header is missing, malformed, stale or does not match."""


def compute_signature(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"<t>.<raw body>"``."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The ``Sandbox-Signature`` header value for ``body`` (``t=<unix seconds>,v1=<hex>``)."""
    ts = int(time.time()) if timestamp is None else timestamp
    return f"t={ts},v1={compute_signature(secret, ts, body)}"


def verify(
    secret: str, header: str | None, body: bytes, *, tolerance: int = DEFAULT_TOLERANCE, now: float | None = None
) -> None:
    """Raise ``InvalidSignatureError`` unless one ``v1`` matches (constant-time) within ``tolerance`` seconds.

    Several ``v1`` entries are accepted, so the secret can be rotated as with Stripe's header.
    """
    if not header:
        raise InvalidSignatureError("missing signature")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise InvalidSignatureError("malformed signature header")
        if key == "t":
            if timestamp is not None or not _TIMESTAMP.fullmatch(value):
                raise InvalidSignatureError("malformed timestamp")
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise InvalidSignatureError("malformed signature header")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise InvalidSignatureError("timestamp outside tolerance")
    expected = compute_signature(secret, timestamp, body)
    # Every candidate is compared (no early exit on the format check) so timing says nothing useful.
    matched = False
    for candidate in candidates:
        if _HEX_SHA256.fullmatch(candidate) and hmac.compare_digest(candidate, expected):
            matched = True
    if not matched:
        raise InvalidSignatureError("no matching signature")


class SandboxCallback(BaseModel):
    """The body the sandbox bank POSTs to ``/billing/sandbox``."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="ignore")

    id: str = Field(min_length=1, max_length=255)
    type: str = Field(min_length=1, max_length=64)
    transaction: str = Field(min_length=1, max_length=32)
    amount: StrictInt = Field(gt=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    created: StrictInt
    failure_code: str | None = Field(default=None, max_length=64)
    # ``payment.authorized``: until when the bank holds the funds (unix seconds).
    authorization_expires_at: StrictInt | None = Field(default=None, ge=0, le=10**11)


CallbackType = Literal["payment.succeeded", "payment.failed", "payment.authorized"]


class SandboxBankClient(Protocol):
    """What the adapter needs from the bank (``providers_svc.sandbox.bank.SandboxBank``)."""

    async def cancel(self, txn_id: str) -> bool: ...

    async def status(self, txn_id: str) -> StatusResult: ...

    async def capture(self, txn_id: str, amount: int) -> int: ...


class SandboxProvider:
    """The test provider. ``start`` needs no call to the bank: the payer page is keyed by our own
    transaction id, and the bank assigns no reference of its own."""

    def __init__(self, *, page_base: str, currencies: frozenset[str], bank: SandboxBankClient) -> None:
        self._page_base = page_base
        self._currencies = currencies
        self._bank = bank

    @property
    def name(self) -> str:
        return NAME

    @property
    def display_name(self) -> str:
        return "Sandbox (test)"

    @property
    def currencies(self) -> frozenset[str]:
        return self._currencies

    @property
    def test_only(self) -> bool:
        return True

    @property
    def starts_locally(self) -> bool:
        return True  # the bank page of the transaction

    async def start(self, txn: Transaction) -> StartResult:
        return StartResult(redirect_url=self._page_base + txn.id, provider_reference=None)

    async def cancel(self, txn: Transaction) -> bool:
        return await self._bank.cancel(txn.id)

    async def fetch_status(self, txn: Transaction) -> StatusResult:
        return await self._bank.status(txn.id)

    async def capture(self, txn: Transaction, amount: int) -> CaptureResult:
        """The bank takes ``amount`` of what it holds (local: no callback follows)."""
        try:
            return CaptureResult(await self._bank.capture(txn.id, amount))
        except LookupError:
            raise ProviderRejectedError(
                "sandbox_nothing_held", "The sandbox bank holds nothing for this payment"
            ) from None

    async def refund(
        self, txn: Transaction, *, refund_id: str, amount: int, reason: str | None, retry: bool = False
    ) -> RefundResult:
        """The bank refunds what a paid transaction took, as the test-mode rule says (``reason``
        ``sandbox:fail`` → failed, ``sandbox:pending`` → pending until asked again, anything else →
        succeeded). Stateless: the same refund always gets the same answer."""
        if txn.status is not TransactionStatus.SUCCEEDED:
            raise ProviderRejectedError("sandbox_not_paid", "The sandbox bank took no money for this payment")
        reference = _refund_reference(refund_id)
        outcome = simulated_outcome(reason)
        if outcome == "fail":
            return RefundResult(
                "failed",
                provider_refund_id=reference,
                failure_code="sandbox_refund_declined",
                failure_message="The sandbox bank declined the refund (reason sandbox:fail)",
            )
        if outcome == "pending":
            return RefundResult("pending", provider_refund_id=reference)
        return RefundResult("succeeded", provider_refund_id=reference)

    async def refund_status(
        self, txn: Transaction, *, refund_id: str, provider_refund_id: str | None, amount: int
    ) -> RefundResult:
        # A pending sandbox refund is finished when it is asked about (by the janitor's status check).
        return RefundResult("succeeded", provider_refund_id=_refund_reference(refund_id))


def _refund_reference(refund_id: str) -> str:
    return f"sbref_{refund_id}"
