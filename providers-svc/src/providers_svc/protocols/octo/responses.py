"""Octo's answers to our calls (PROTOCOLS.md §3.2, §3.3): ``{error: 0, data: {...}}``, or the same fields
flat as older documents show them; ``{error: n, errMessage}`` for a refusal."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from providers_svc.domain.transactions import TransactionStatus

# Octo's payment statuses, and what each means for our transaction. `waiting_for_capture` is authorised
# money that waits for our decision (two-stage): still pending until we capture or cancel.
PAYMENT_STATUSES: Mapping[str, TransactionStatus] = {
    "created": TransactionStatus.PENDING,
    "wait_user_action": TransactionStatus.PENDING,
    "waiting_for_capture": TransactionStatus.PENDING,
    "succeeded": TransactionStatus.SUCCEEDED,
    "canceled": TransactionStatus.CANCELLED,
}
REFUND_STATUSES = frozenset({"new", "pending", "succeeded", "canceled", "unknown", "error"})


class OctoRefused(Exception):
    """Octo answered with a non-zero ``error`` (``code``), e.g. 2 "Wrong secret"."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"octo error {code}: {message}")
        self.code = code
        self.message = message


class OctoMalformed(Exception):
    """An answer that is not what the protocol says (a reason to retry later, never to move money)."""


@dataclass(frozen=True)
class PaymentState:
    shop_transaction_id: str
    octo_payment_uuid: str
    status: str  # Octo's own word
    pay_url: str | None
    # The payment's sum as Octo says it (major units, unchecked): ``amounts.from_major`` reads it.
    total_sum: object = None

    @property
    def ours(self) -> TransactionStatus | None:
        """Our status for Octo's, None for a status the documents do not name (never guessed)."""
        return PAYMENT_STATUSES.get(self.status)


def _payload(body: object) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise OctoMalformed("the answer is not a JSON object")
    error = body.get("error", 0)
    if isinstance(error, bool) or not isinstance(error, int):
        raise OctoMalformed("`error` is not an integer")
    if error != 0:
        message = body.get("errMessage") or body.get("errorMessage") or ""
        raise OctoRefused(error, str(message)[:500])
    data = body.get("data")
    return data if isinstance(data, Mapping) else body


def payment_state(body: object) -> PaymentState:
    """A prepare_payment or status answer."""
    data = _payload(body)
    fields = {name: data.get(name) for name in ("shop_transaction_id", "octo_payment_UUID", "status")}
    missing = [name for name, value in fields.items() if not isinstance(value, str) or not value]
    if missing:
        raise OctoMalformed(f"missing {', '.join(missing)}")
    pay_url = data.get("octo_pay_url")
    return PaymentState(
        shop_transaction_id=str(fields["shop_transaction_id"]),
        octo_payment_uuid=str(fields["octo_payment_UUID"]),
        status=str(fields["status"]),
        pay_url=pay_url if isinstance(pay_url, str) and pay_url else None,
        total_sum=data.get("total_sum"),
    )


def refund_status(body: object) -> str:
    """A refund answer's status (one of ``REFUND_STATUSES``)."""
    data = _payload(body)
    status = data.get("status")
    if status not in REFUND_STATUSES:
        raise OctoMalformed("unknown refund status")
    return str(status)
