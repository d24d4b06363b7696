"""Voiding one attempt (``POST /internal/payments/{payment_id}/transactions/{ptx}/void``): the payer left
provider X without paying and chose another; X's transaction must never take the money after that.

Each provider closes it its own way, through its adapter's ``cancel``: Stripe cancels the PaymentIntent
(or expires the Checkout Session), Octo cancels the payment; Payme, Click, the sandbox and the simulators
have nothing to call, and our own record closing is what refuses their later callbacks (Payme's
Perform -31008 and Create -31051, Click's Prepare and Complete -9). The transaction is then cancelled
here, guarded (pending → cancelled): a success that lands in between wins and refuses the void."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from billing_contracts.envelope import utcnow
from billing_runtime.problems import ProblemError

from providers_svc.adapters.base import ProviderRejectedError, ProviderUnavailableError
from providers_svc.domain.transactions import TransactionStatus
from providers_svc.services.directory import ProviderDirectory
from providers_svc.services.uow import UowFactory

log = logging.getLogger(__name__)

_RETRY_AFTER = {"Retry-After": "5"}


def _taken() -> ProblemError:
    return ProblemError(409, "not_cancellable", "The provider has already taken (or is taking) this payment")


def _unavailable(detail: str) -> ProblemError:
    return ProblemError(503, "provider_unavailable", detail, headers=_RETRY_AFTER)


async def void_transaction(
    uow_factory: UowFactory,
    directory: ProviderDirectory,
    tenant_id: str,
    payment_id: str,
    transaction_id: str,
    *,
    clock: Callable[[], datetime] = utcnow,
) -> TransactionStatus:
    """Close ``transaction_id`` of ``payment_id`` at its provider and here; its final status (cancelled,
    or failed when the provider had already declined it). 404 for a transaction that is not one of this
    tenant's payment's, 409 ``not_cancellable`` when the provider took or is taking the money, 503 when it
    cannot say (asked again by the payer's next try)."""
    async with uow_factory() as uow:
        transactions = await uow.tenant_transactions(tenant_id).list_for_payment(payment_id)
    txn = next((t for t in transactions if t.id == transaction_id), None)
    if txn is None:
        raise ProblemError(404, "not_found", "No such transaction for this payment")
    if txn.status is TransactionStatus.SUCCEEDED:
        raise _taken()
    if txn.status.is_final:
        return txn.status  # failed or cancelled already: it can take nothing
    provider = await directory.for_transaction(txn)
    if provider is None:
        raise _unavailable(f"Provider {txn.provider!r} is not enabled")
    try:
        closed = await provider.cancel(txn)
    except ProviderUnavailableError as exc:
        raise _unavailable("The provider is unavailable") from exc
    except ProviderRejectedError as exc:
        # Nothing proves it will not take the money: the attempt stays as it is.
        log.error("provider %s refused to void %s: %s", provider.name, txn.id, exc.code)
        raise _unavailable("The provider refused the void") from exc
    if not closed:
        raise _taken()
    async with uow_factory() as uow:
        repo = uow.tenant_transactions(tenant_id)
        await repo.cancel_if_pending(txn.id, clock())
        after = next((t for t in await repo.list_for_payment(payment_id) if t.id == txn.id), None)
        await uow.commit()
    assert after is not None
    if after.status is TransactionStatus.SUCCEEDED:
        raise _taken()  # its success was applied while we voided it
    log.info("voided %s (%s) of payment %s", txn.id, txn.provider, payment_id)
    return after.status
