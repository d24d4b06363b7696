"""Click's settlement export: one line per payment of the service, amounts in so'm with decimals
(``50000.00``), times in Tashkent (``YYYY-MM-DD HH:MM:SS``, UTC+5), ``merchant_trans_id`` our payment id.

``status``: ``success``, ``pending``, ``cancelled``, ``error`` and ``reversed`` (Click reversed the
whole payment: it is reported ``refunded`` and gives a refund line too, whose id is the
``click_trans_id`` as providers-svc records a reversal; ``reversal_date`` when the export has it).
"""

from __future__ import annotations

from typing import ClassVar

from billing_contracts.statements import StatementRecord

from reconciliation_svc.domain.settlement_csv.base import TASHKENT, Row, RowError, SettlementFormat

_STATUSES = {
    "success": "succeeded",
    "pending": "pending",
    "cancelled": "cancelled",
    "error": "failed",
    "reversed": "refunded",
}


class ClickSettlement(SettlementFormat):
    provider: ClassVar[str] = "click"
    required: ClassVar[tuple[str, ...]] = ("click_trans_id", "merchant_trans_id", "amount", "status", "payment_date")
    optional: ClassVar[tuple[str, ...]] = ("click_paydoc_id", "service_id", "reversal_date")

    def records(self, row: Row, account_id: str) -> list[StatementRecord]:
        status = row.choice("status", _STATUSES)
        amount = row.decimal("amount", "UZS")
        if amount <= 0:
            raise RowError("amount", "must be a positive amount of so'm")
        reference = row.text("click_trans_id")
        if not reference.isdigit():
            raise RowError("click_trans_id", f"{reference!r} is not a Click transaction number")
        paid_at = row.local_time("payment_date", TASHKENT)
        common = {"provider_reference": reference, "payment_id": row.text("merchant_trans_id"), "amount": amount}
        payment = self.record(
            row, account_id, kind="payment", currency="UZS", status=status, occurred_at=paid_at, **common
        )
        if status != "refunded":
            return [payment]
        reversed_at = row.local_time("reversal_date", TASHKENT) if row.optional("reversal_date") else paid_at
        refund = self.record(
            row, account_id, kind="refund", currency="UZS", status="succeeded", occurred_at=reversed_at, **common
        )
        return [payment, refund]
