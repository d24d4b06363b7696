"""Use cases behind the internal API: start a payment at a provider, cancel it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from billing_contracts.envelope import utcnow
from billing_runtime.problems import ProblemError

from providers_svc.adapters.base import (
    PaymentProvider,
    ProviderRejectedError,
    ProviderUnavailableError,
    StartResult,
)
from providers_svc.db.repositories import NewTransaction
from providers_svc.db.transaction_starts import create_or_find, new_transaction, record_started
from providers_svc.domain.transactions import MANUAL, MANUAL_CAPTURE_PROVIDERS, Transaction, TransactionStatus
from providers_svc.services.directory import ProviderDirectory
from providers_svc.services.uow import UowFactory

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
_RETRY_AFTER = {"Retry-After": "5"}


@dataclass(frozen=True)
class StartPayment:
    tenant_id: str
    payment_id: str
    provider: str
    amount: int
    currency: str
    order_id: str | None
    description: str | None
    return_url: str | None
    expires_at: datetime | None
    # The tenant's mode, from the caller's internal token (never from the request body).
    livemode: bool = False
    capture_method: str = "automatic"


@dataclass(frozen=True)
class Started:
    transaction: Transaction
    created: bool


def _same_request(txn: Transaction, cmd: StartPayment) -> bool:
    return (
        txn.amount == cmd.amount
        and txn.currency == cmd.currency
        and txn.livemode == cmd.livemode
        and txn.capture_method == cmd.capture_method
    )


async def start_payment(
    uow_factory: UowFactory,
    directory: ProviderDirectory,
    cmd: StartPayment,
    *,
    default_ttl: int,
    clock: Clock = utcnow,
) -> Started:
    """Create (or find) the transaction for ``(payment_id, provider)`` and make sure the provider has
    started it. Idempotent: every repeat returns the same transaction and redirect URL (PRV-2).

    The provider is called outside any database transaction: the row is committed first, then the
    adapter runs (idempotent on the transaction id), then the first redirect URL stored wins. A crash or
    a provider outage in between leaves a row without a redirect URL that the next retry completes. An
    adapter that calls no one (``starts_locally``: the sandbox, Payme, Click) builds its pay URL first,
    and the row is inserted with it.
    """
    if cmd.capture_method == MANUAL and cmd.provider not in MANUAL_CAPTURE_PROVIDERS:
        raise ProblemError(
            422, "capture_method_unsupported", f"Provider {cmd.provider!r} cannot hold a payment for a later capture"
        )
    offer = await directory.for_start(cmd.tenant_id, cmd.provider, cmd.currency, livemode=cmd.livemode)
    now = clock()
    new = new_transaction(
        NewTransaction(
            tenant_id=cmd.tenant_id,
            payment_id=cmd.payment_id,
            provider=cmd.provider,
            amount=cmd.amount,
            currency=cmd.currency,
            order_id=cmd.order_id,
            description=cmd.description,
            return_url=cmd.return_url,
            expires_at=cmd.expires_at or now + timedelta(seconds=default_ttl),
            livemode=cmd.livemode,
            account_id=offer.account.id if offer.account is not None else None,
            capture_method=cmd.capture_method,
        ),
        now,
    )
    adapter = directory.adapter(offer)
    # A pay URL built from the transaction alone is stored with it: one statement, not an insert and
    # then an update (a repeat finds the stored one and never uses the one built here).
    early = await _start(adapter, new) if adapter.starts_locally else None
    async with uow_factory() as uow:
        txn, created = await create_or_find(uow, new, early)
        await uow.commit()  # nothing left to commit but in tests, where the unit holds one connection
    # None here: the pair exists but belongs to another tenant (payment ids are global).
    if txn is None or not _same_request(txn, cmd):
        raise ProblemError(
            409, "payment_conflict", "A provider transaction for this payment exists with different parameters"
        )
    if txn.redirect_url is not None:
        return Started(txn, created)
    if txn.status is not TransactionStatus.PENDING:
        # Cancelled while its provider was unreachable: never open an attempt for a closed transaction.
        raise ProblemError(409, "transaction_closed", f"The provider transaction is {txn.status.value}")

    # The account the transaction was created with, not today's assignment (a retry after a change).
    provider = await directory.for_transaction(txn)
    if provider is None:
        raise ProblemError(503, "provider_unavailable", "The provider is unavailable", headers=_RETRY_AFTER)
    result = await _start(provider, txn)
    async with uow_factory() as uow:
        stored = await record_started(uow, txn, result.redirect_url, result.provider_reference, clock())
        await uow.commit()
    assert stored is not None
    return Started(stored, created)


async def _start(provider: PaymentProvider, txn: Transaction) -> StartResult:
    try:
        return await provider.start(txn)
    except ProviderUnavailableError as exc:
        log.warning("provider %s unavailable starting %s: %s", provider.name, txn.id, exc)
        raise ProblemError(503, "provider_unavailable", "The provider is unavailable", headers=_RETRY_AFTER) from exc
    except ProviderRejectedError as exc:
        raise ProblemError(422, "provider_rejected", str(exc)) from exc


async def cancel_payment(
    uow_factory: UowFactory, directory: ProviderDirectory, tenant_id: str, payment_id: str, *, clock: Clock = utcnow
) -> None:
    """Cancel every pending transaction of the payment at its provider, then here (PRV-5).

    Raises 409 ``not_cancellable`` when a provider already took (or is taking) the money. Providers
    are asked first, outside any database transaction; the local move is a guarded pending → cancelled,
    so a success callback that lands in between wins and is reported as not cancellable.
    """
    async with uow_factory() as uow:
        transactions = await uow.tenant_transactions(tenant_id).list_for_payment(payment_id)
    if any(t.status is TransactionStatus.SUCCEEDED for t in transactions):
        raise ProblemError(409, "not_cancellable", "The provider has already taken the payment")
    pending = [t for t in transactions if t.status is TransactionStatus.PENDING]
    for txn in pending:
        provider = await directory.for_transaction(txn)
        if provider is None:
            raise ProblemError(
                503, "provider_unavailable", f"Provider {txn.provider!r} is not enabled", headers=_RETRY_AFTER
            )
        try:
            cancelled = await provider.cancel(txn)
        except ProviderUnavailableError as exc:
            raise ProblemError(
                503, "provider_unavailable", "The provider is unavailable", headers=_RETRY_AFTER
            ) from exc
        except ProviderRejectedError as exc:
            # The provider refused to say (an attempt it no longer knows, a revoked key): nothing proves
            # it will not take the money, so the payment stays payable, and is asked again later.
            log.error("provider %s refused to cancel %s: %s", provider.name, txn.id, exc.code)
            raise ProblemError(
                503, "provider_unavailable", "The provider refused the cancellation", headers=_RETRY_AFTER
            ) from exc
        if not cancelled:
            raise ProblemError(409, "not_cancellable", "The provider has already taken the payment")
    if not pending:
        return
    async with uow_factory() as uow:
        repo = uow.tenant_transactions(tenant_id)
        for txn in pending:
            await repo.cancel_if_pending(txn.id, clock())
        after = await repo.list_for_payment(payment_id)
        await uow.commit()
    if any(t.status is TransactionStatus.SUCCEEDED for t in after):
        raise ProblemError(409, "not_cancellable", "The provider has already taken the payment")
