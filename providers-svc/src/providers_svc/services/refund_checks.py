"""``POST /internal/refunds/check``: whether the payment's provider can refund this amount, asked by
payments-svc before it accepts a refund (read-only; the refund itself travels as ``refund.created``).

What each provider allows (PROTOCOLS.md):
- Payme: no refund of ours at all. Payme refunds by cancelling a performed transaction itself
  (CancelTransaction → state -2, started in Payme's merchant cabinet): 409 ``refund_not_supported``.
- Click: a reversal of the whole payment (422 ``partial_refund_not_supported``), made in Click's
  reporting month (Tashkent; last month's only on the 1st: 409 ``refund_window_closed``). Only card
  payments can be reversed, but Click never tells us how a payment was paid: its refusal of the
  reversal decides (the refund then fails with ``click_<code>``).
- Octo: at most 10 million so'm per refund, and at least 1 USD for a USD payment (422
  ``refund_amount_out_of_range``); the 1 USD minimum of a UZS payment needs an exchange rate we do not
  have, so Octo's own refusal decides it (``octo_refund_amount_refused``). The cumulative cap (never
  more than the payment) is payments-svc's, which reserves every refund's amount.
- Stripe, the sandbox and the simulators: refundable (Stripe's own refusals come back as the verdict).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from billing_contracts.envelope import utcnow
from billing_runtime.problems import ProblemError

from providers_svc.adapters.click import NAME as CLICK
from providers_svc.adapters.click import in_reversal_period
from providers_svc.adapters.octo import NAME as OCTO
from providers_svc.adapters.payme import NAME as PAYME
from providers_svc.domain.transactions import TransactionStatus
from providers_svc.services.uow import UowFactory

# Octo's per-refund limits in minor units (PROTOCOLS.md §3.3): 1 USD, 10 million so'm (in tiyin, 100 per so'm).
OCTO_MIN_USD = 100
OCTO_MAX_UZS = 10_000_000 * 100


async def check_refund(
    uow_factory: UowFactory,
    tenant_id: str,
    *,
    payment_id: str,
    provider: str,
    amount: int,
    payment_amount: int,
    currency: str,
    amount_refunded: int,
    paid_at: datetime | None,
    clock: Callable[[], datetime] = utcnow,
) -> None:
    """Raise the problem that says why the refund cannot be made; return when it can be asked for."""
    async with uow_factory() as uow:
        txn = await uow.tenant_transactions(tenant_id).get_for_payment(payment_id, provider)
    if txn is None:
        raise ProblemError(404, "transaction_not_found", f"No {provider} transaction of payment {payment_id}")
    if txn.status is not TransactionStatus.SUCCEEDED:
        raise ProblemError(409, "invalid_state", f"The {provider} transaction of the payment is {txn.status.value}")
    if currency != txn.currency:
        raise ProblemError(422, "currency_mismatch", f"The payment was made in {txn.currency}, not {currency}")
    if provider == PAYME:
        raise ProblemError(
            409,
            "refund_not_supported",
            "Payme payments are refunded by Payme: cancel the transaction in Payme's merchant cabinet "
            "(cancel after perform); the refund then appears here by itself",
        )
    if provider == CLICK:
        if amount != payment_amount or amount_refunded != 0 or amount != txn.amount:
            raise ProblemError(
                422, "partial_refund_not_supported", "Click reverses whole payments only: refund the full amount"
            )
        if not in_reversal_period(paid_at or txn.updated_at, clock()):
            raise ProblemError(
                409,
                "refund_window_closed",
                "Click reverses payments of the current month only (last month's on the 1st day of this one)",
            )
    if provider == OCTO and (
        (currency == "USD" and amount < OCTO_MIN_USD) or (currency == "UZS" and amount > OCTO_MAX_UZS)
    ):
        raise ProblemError(
            422,
            "refund_amount_out_of_range",
            "Octo refunds at least 1 USD and at most 10,000,000 UZS at a time",
        )
