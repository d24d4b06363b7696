"""Stripe's statement of a period: its charges (a line per payment, with our ids from the metadata our
adapter writes), its refund balance transactions (a line per refund) and its dispute balance
transactions (a line per movement of a dispute's money: ``dispute``, the disputed amount withdrawn;
``dispute_reversal``, given back to a won dispute; named by the dispute, ``source``), through the
account's ``StripeApi``, a page at a time. Charges' own balance transactions are not repeated: a charge
line already says what the payment took. A dispute's fee is Stripe's charge to the merchant, not a
payment's money: not a line."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from billing_contracts.statements import StatementKind, StatementRecord, StatementStatus

from providers_svc.adapters.base import ProviderUnavailableError
from providers_svc.adapters.stripe.amounts import from_stripe
from providers_svc.adapters.stripe.client import StripeApi
from providers_svc.services.statements.period import Period

NAME = "stripe"
_CHARGE_STATUS: dict[str, StatementStatus] = {"succeeded": "succeeded", "pending": "pending", "failed": "failed"}
_REFUNDS = frozenset({"refund", "payment_refund"})
# A balance transaction's ``reporting_category`` of a dispute's money, and what it did.
_DISPUTES: dict[str, StatementStatus] = {"dispute": "withdrawn", "dispute_reversal": "reinstated"}


async def stripe_records(api: StripeApi, account_id: str, period: Period) -> AsyncIterator[StatementRecord]:
    start, end = int(period.start.timestamp()), int(period.end.timestamp())
    async for charge in api.charges(start, end):
        yield _charge_line(charge, account_id)
    async for txn in api.balance_transactions(start, end):
        if txn.get("type") in _REFUNDS:
            yield _balance_line(txn, account_id, "refund", "succeeded")
        elif (moved := _DISPUTES.get(str(txn.get("reporting_category")))) is not None:
            yield _balance_line(txn, account_id, "dispute", moved)


def _charge_line(charge: dict[str, Any], account_id: str) -> StatementRecord:
    currency = str(charge["currency"]).upper()
    metadata = charge.get("metadata") or {}
    status = _CHARGE_STATUS.get(str(charge.get("status")), "pending")
    if status == "succeeded" and charge.get("refunded"):
        status = "refunded"
    intent = charge.get("payment_intent")
    return StatementRecord(
        provider=NAME,
        account_id=account_id,
        provider_reference=str(intent or charge["id"]),
        payment_id=metadata.get("payment_id"),
        amount=_ours(int(charge["amount"]), currency),
        currency=currency,
        status=status,
        occurred_at=datetime.fromtimestamp(int(charge["created"]), UTC),
    )


def _balance_line(
    txn: dict[str, Any], account_id: str, kind: StatementKind, status: StatementStatus
) -> StatementRecord:
    """A line of a balance transaction: named by what it moved money for (``source``: the refund
    ``re_…``, the dispute ``dp_…``), unsigned."""
    currency = str(txn["currency"]).upper()
    return StatementRecord(
        provider=NAME,
        account_id=account_id,
        kind=kind,
        provider_reference=str(txn.get("source") or txn["id"]),
        amount=_ours(abs(int(txn["amount"])), currency),
        currency=currency,
        status=status,
        occurred_at=datetime.fromtimestamp(int(txn["created"]), UTC),
    )


def _ours(amount: int, currency: str) -> int:
    ours = from_stripe(amount, currency)
    if ours is None:
        # Never rounded into a line that would match or mismatch by accident.
        raise ProviderUnavailableError(f"Stripe named an amount that is no whole amount of {currency}")
    return ours
