"""Stripe's itemized balance-change report (``balance_change_from_activity.itemized``), as the Dashboard
and the Reporting API export it: one line per balance transaction, amounts in major units with
decimals, currencies in lower case, ``*_utc`` times in UTC.

Lines of the categories ``charge``, ``refund`` and ``refund_failure`` are matched, and so are
``dispute`` (the disputed amount withdrawn: money out) and ``dispute_reversal`` (given back, a won
dispute), each a ``dispute`` record named by the dispute (``source_id``, ``dp_...``) and its payment
(``payment_intent_id``, else ``charge_id``); the categories that move no payment of ours (fees, payouts,
transfers, ...) are skipped; any other category is refused, so a category Stripe adds later is looked at
rather than silently dropped. A dispute's fee (the report's ``fee``) is Stripe's charge to the merchant
and is not compared: our projection of disputes does not know it.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from billing_contracts.statements import StatementRecord

from reconciliation_svc.domain.settlement_csv.base import UTC_ZONE, Row, RowError, SettlementFormat

MATCHED = frozenset({"charge", "refund", "refund_failure", "dispute", "dispute_reversal"})
SKIPPED = frozenset(
    {
        "fee",
        "payout",
        "payout_reversal",
        "transfer",
        "transfer_reversal",
        "platform_earning",
        "platform_earning_refund",
        "connect_reserved_funds",
        "risk_reserved_funds",
        "other_adjustment",
        "tax",
        "topup",
        "topup_reversal",
        "partial_capture_reversal",
        "charge_failure",
        "advance",
        "advance_funding",
        "anticipation_repayment",
        "contribution",
        "issuing_authorization_hold",
        "issuing_authorization_release",
        "issuing_transaction",
        "climate_order_purchase",
        "climate_order_refund",
    }
)


class StripeBalanceReport(SettlementFormat):
    provider: ClassVar[str] = "stripe"
    reports_disputes: ClassVar[bool] = True
    required: ClassVar[tuple[str, ...]] = (
        "balance_transaction_id",
        "created_utc",
        "currency",
        "gross",
        "reporting_category",
    )
    optional: ClassVar[tuple[str, ...]] = (
        "source_id",
        "charge_id",
        "payment_intent_id",
        "customer_facing_amount",
        "customer_facing_currency",
        "payment_metadata[payment_id]",
        "refund_metadata[refund_id]",
        "fee",
        "net",
        "description",
    )

    def records(self, row: Row, account_id: str) -> list[StatementRecord]:
        category = row.text("reporting_category").lower()
        if category in SKIPPED:
            return []
        if category not in MATCHED:
            raise RowError("reporting_category", f"{category!r} is not a category this report is known to hold")
        occurred_at = row.local_time("created_utc", UTC_ZONE)
        # Our payment holds what the customer was charged: the presentment amount, which the report gives
        # as customer_facing_* when Stripe converted it into the settlement currency (gross).
        if row.optional("customer_facing_amount") is not None and row.optional("customer_facing_currency"):
            currency = row.currency("customer_facing_currency")
            amount = row.decimal("customer_facing_amount", currency)
        else:
            currency = row.currency("currency")
            amount = row.decimal("gross", currency)
        payment_id = row.optional("payment_metadata[payment_id]")
        if category == "charge":
            if amount <= 0:
                raise RowError("gross", "a charge must credit the balance (a positive amount)")
            reference = row.optional("payment_intent_id") or row.optional("charge_id") or row.optional("source_id")
            if reference is None:
                raise RowError("payment_intent_id", "a charge names no payment_intent_id, charge_id or source_id")
            return [
                self.record(
                    row,
                    account_id,
                    kind="payment",
                    provider_reference=reference,
                    payment_id=payment_id,
                    amount=amount,
                    currency=currency,
                    status="succeeded",
                    occurred_at=occurred_at,
                )
            ]
        if category in ("dispute", "dispute_reversal"):
            return [self._dispute(row, account_id, category, amount, currency, payment_id, occurred_at)]
        # A refund debits the balance (negative); its failure gives the money back (positive).
        if category == "refund" and amount >= 0 and row.optional("customer_facing_amount") is None:
            raise RowError("gross", "a refund must debit the balance (a negative amount)")
        if category == "refund_failure" and amount <= 0:
            raise RowError("gross", "a refund failure must credit the balance (a positive amount)")
        return [
            self.record(
                row,
                account_id,
                kind="refund",
                provider_reference=row.text("source_id"),
                payment_id=payment_id,
                refund_id=row.optional("refund_metadata[refund_id]"),
                amount=abs(amount),
                currency=currency,
                status="succeeded" if category == "refund" else "failed",
                occurred_at=occurred_at,
            )
        ]

    def _dispute(
        self,
        row: Row,
        account_id: str,
        category: str,
        amount: int,
        currency: str,
        payment_id: str | None,
        occurred_at: datetime,
    ) -> StatementRecord:
        """A dispute's withdrawal debits the balance (negative); its reversal credits it (positive)."""
        withdrawn = category == "dispute"
        if row.optional("customer_facing_amount") is None and (amount >= 0 if withdrawn else amount <= 0):
            sign = "debit (a negative amount)" if withdrawn else "credit (a positive amount)"
            raise RowError("gross", f"a {category} must {sign} the balance")
        payment = row.optional("payment_intent_id") or row.optional("charge_id")
        reference = row.optional("source_id") or payment
        if reference is None:
            raise RowError("source_id", f"a {category} names no source_id, payment_intent_id or charge_id")
        return self.record(
            row,
            account_id,
            kind="dispute",
            provider_reference=reference,
            payment_reference=payment,
            payment_id=payment_id,
            amount=abs(amount),
            currency=currency,
            status="withdrawn" if withdrawn else "reinstated",
            occurred_at=occurred_at,
        )
