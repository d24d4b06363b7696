"""Octo's settlement export: one line per payment or refund (``type``), amounts (``total_sum``) in the
currency's major units with decimals, times in Tashkent (``YYYY-MM-DD HH:MM:SS``, UTC+5). A payment is
named by Octo's ``octo_payment_UUID`` and our ``shop_transaction_id``; a refund by Octo's refund id and
our ``shop_refund_id`` (the refund id we sent).

Statuses are Octo's own (PROTOCOLS.md §3.3): payments ``succeeded``, ``canceled``, ``created``,
``wait_user_action``, ``waiting_for_capture``, ``refunded``; refunds ``succeeded``, ``canceled``,
``error``, ``new``, ``pending``.
"""

from __future__ import annotations

from typing import ClassVar

from billing_contracts.statements import StatementRecord

from reconciliation_svc.domain.settlement_csv.base import TASHKENT, Row, RowError, SettlementFormat

_PAYMENT_STATUSES = {
    "succeeded": "succeeded",
    "canceled": "cancelled",
    "created": "pending",
    "wait_user_action": "pending",
    "waiting_for_capture": "pending",
    "refunded": "refunded",
}
_REFUND_STATUSES = {
    "succeeded": "succeeded",
    "canceled": "cancelled",
    "error": "failed",
    "new": "pending",
    "pending": "pending",
}


class OctoSettlement(SettlementFormat):
    provider: ClassVar[str] = "octo"
    required: ClassVar[tuple[str, ...]] = (
        "type",
        "octo_id",
        "shop_transaction_id",
        "status",
        "total_sum",
        "currency",
        "time",
    )
    optional: ClassVar[tuple[str, ...]] = ("shop_refund_id", "transfer_sum")

    def records(self, row: Row, account_id: str) -> list[StatementRecord]:
        kind = row.choice("type", {"payment": "payment", "refund": "refund"})
        currency = row.currency("currency")
        amount = row.decimal("total_sum", currency)
        if amount <= 0:
            raise RowError("total_sum", "must be a positive amount")
        common = {
            "provider_reference": row.text("octo_id"),
            "payment_id": row.text("shop_transaction_id"),
            "amount": amount,
            "currency": currency,
            "occurred_at": row.local_time("time", TASHKENT),
        }
        if kind == "payment":
            return [
                self.record(row, account_id, kind="payment", status=row.choice("status", _PAYMENT_STATUSES), **common)
            ]
        refund_id = row.optional("shop_refund_id")
        if refund_id is None:
            raise RowError("shop_refund_id", "is empty on a refund line")
        status = row.choice("status", _REFUND_STATUSES)
        return [self.record(row, account_id, kind="refund", refund_id=refund_id, status=status, **common)]
