"""Payme's merchant report: the kassa's transactions as Payme's cabinet exports them, one line per
transaction with the fields of ``GetStatement`` (PROTOCOLS.md §2.2): times as 13-digit Unix
milliseconds, amounts in tiyin (already minor units of UZS), ``state`` as in §2.3 and ``account`` the
value of the kassa's account field (our payment id).

A transaction cancelled after perform (state -2) is a refund Payme made: the line gives the payment
(reported ``refunded``) and its refund (id: the Payme transaction id, as providers-svc records it).
"""

from __future__ import annotations

from typing import ClassVar

from billing_contracts.statements import StatementRecord

from reconciliation_svc.domain.settlement_csv.base import Row, RowError, SettlementFormat

_STATES = {"1": "pending", "2": "succeeded", "-1": "cancelled", "-2": "refunded"}


class PaymeReport(SettlementFormat):
    provider: ClassVar[str] = "payme"
    required: ClassVar[tuple[str, ...]] = (
        "id",
        "time",
        "amount",
        "account",
        "state",
        "create_time",
        "perform_time",
        "cancel_time",
    )
    optional: ClassVar[tuple[str, ...]] = ("reason", "transaction")

    def records(self, row: Row, account_id: str) -> list[StatementRecord]:
        status = row.choice("state", _STATES)
        amount = row.minor("amount")
        if amount <= 0:
            raise RowError("amount", "must be a positive number of tiyin")
        row.millis("time")
        created = row.millis("create_time")
        performed = row.millis("perform_time")
        cancelled = row.millis("cancel_time")
        if created is None:
            raise RowError("create_time", "is 0: Payme reports only transactions it created")
        if status in ("succeeded", "refunded") and performed is None:
            raise RowError("perform_time", f"is 0 for a transaction in state {row.text('state')}")
        if status in ("cancelled", "refunded") and cancelled is None:
            raise RowError("cancel_time", f"is 0 for a transaction in state {row.text('state')}")
        common = {
            "provider_reference": row.text("id"),
            "payment_id": row.text("account"),
            "amount": amount,
            "currency": "UZS",
        }
        payment = self.record(
            row, account_id, kind="payment", status=status, occurred_at=performed or created, **common
        )
        if status != "refunded":
            return [payment]
        refund = self.record(row, account_id, kind="refund", status="succeeded", occurred_at=cancelled, **common)
        return [payment, refund]
