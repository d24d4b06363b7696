"""Capturing an authorized payment at its provider (``POST /internal/payments/{id}/capture``, called by
payments-svc for the tenant's ``POST /v1/payments/{id}/capture``).

The provider is called outside any database transaction, with a key derived from our transaction (one
per payment and provider: Stripe's idempotency key, Octo's payment UUID, the sandbox bank's ledger
row), so a retry after a lost answer is the same capture there. What it confirmed is then recorded as
any provider verdict is (``services.callbacks.handle_notice``: the transaction's move and
``provider.payment.succeeded`` in one unit, once): the provider's own later webhook or callback for the
same capture finds the transaction succeeded and changes nothing. A crash after the provider's
capture and before our record heals by that webhook, or by reconciliation's sync, which asks the
provider and records its word the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from billing_runtime.problems import ProblemError

from providers_svc.adapters.base import (
    CaptureResult,
    OperationNotSupportedError,
    ProviderRejectedError,
    ProviderUnavailableError,
)
from providers_svc.domain.transactions import Transaction, TransactionStatus, Verdict
from providers_svc.services.callbacks import ProviderNotice, handle_notice
from providers_svc.services.directory import ProviderDirectory
from providers_svc.services.uow import UowFactory

log = logging.getLogger(__name__)
_RETRY_AFTER = {"Retry-After": "5"}


@dataclass(frozen=True)
class Capture:
    tenant_id: str
    payment_id: str
    provider: str
    amount: int
    currency: str


def _unavailable(detail: str) -> ProblemError:
    return ProblemError(503, "provider_unavailable", detail, headers=_RETRY_AFTER)


def _invalid(detail: str) -> ProblemError:
    return ProblemError(409, "invalid_state", detail)


async def capture_payment(uow_factory: UowFactory, directory: ProviderDirectory, cmd: Capture) -> CaptureResult:
    """Capture ``cmd.amount`` of the payment's authorized transaction at ``cmd.provider``; what the
    provider took (a repeat after a capture answers with that capture, whatever it asks).

    404 ``not_found`` for no such transaction of the tenant; 409 ``invalid_state`` for one that is not
    authorized (or was released); 422 ``amount_exceeds_capturable``; 409 ``capture_refused`` when the
    provider refuses; 503 when it cannot be reached (nothing recorded, safe to retry)."""
    async with uow_factory() as uow:
        txn = await uow.tenant_transactions(cmd.tenant_id).get_for_payment(cmd.payment_id, cmd.provider)
    if txn is None:
        raise ProblemError(404, "not_found", "No such payment at this provider")
    if txn.status is TransactionStatus.SUCCEEDED:
        return _captured(txn)
    if not txn.authorized:
        raise _invalid(f"The provider transaction is {txn.status.value} and holds nothing to capture")
    if cmd.currency != txn.currency:
        raise ProblemError(422, "validation_error", "currency is not the payment's")
    if cmd.amount > txn.amount:
        raise ProblemError(
            422,
            "amount_exceeds_capturable",
            f"amount {cmd.amount} exceeds the {txn.amount} {txn.currency} held",
            extensions={"amount_capturable": txn.amount},
        )
    provider = await directory.for_transaction(txn)
    if provider is None:
        raise _unavailable(f"Provider {txn.provider!r} is not enabled")
    try:
        result = await provider.capture(txn, cmd.amount)
    except ProviderUnavailableError as exc:
        log.warning("provider %s unavailable capturing %s: %s", txn.provider, txn.id, exc)
        raise _unavailable("The provider is unavailable") from exc
    except OperationNotSupportedError as exc:
        raise ProblemError(422, "capture_method_unsupported", str(exc)) from exc
    except ProviderRejectedError as exc:
        log.warning("provider %s refused to capture %s: %s", txn.provider, txn.id, exc.code)
        raise ProblemError(409, "capture_refused", f"The provider refused the capture ({exc.code})") from exc
    notice = ProviderNotice(
        provider=txn.provider,
        # One capture per transaction: this is its event, whoever records it first.
        external_id=f"capture:{txn.id}",
        event_type="capture",
        transaction_id=txn.id,
        verdict=Verdict.SUCCEEDED,
        amount=result.amount,
        currency=txn.currency,
        payload=f'{{"captured": {result.amount}}}',
        provider_reference=result.provider_reference,
        test_only=provider.test_only,
    )
    await handle_notice(uow_factory, notice)
    async with uow_factory() as uow:
        after = await uow.tenant_transactions(cmd.tenant_id).get_for_payment(cmd.payment_id, cmd.provider)
    if after is None or after.status is not TransactionStatus.SUCCEEDED:
        # The provider captured, but our record refused it (another amount, a transaction closed
        # meanwhile): an anomaly is on record; the tenant is told nothing was captured here.
        raise _invalid("The capture could not be recorded against this payment")
    return _captured(after)


def _captured(txn: Transaction) -> CaptureResult:
    return CaptureResult(txn.captured_amount or txn.amount, txn.provider_reference)
