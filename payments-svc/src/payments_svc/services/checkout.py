"""The payer's side: the public view of a payment and "pay with this provider"."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from billing_runtime.errors import ProblemError

from payments_svc.db.attempts import attempt_snapshots
from payments_svc.db.models import Payment, PaymentAttempt
from payments_svc.db.repositories import (
    PaymentRepository,
    payment_by_checkout_token,
    payment_snapshot,
    payment_unchanged,
)
from payments_svc.domain.attempts import AttemptStatus, closed_status
from payments_svc.domain.errors import InvalidState, NotFound
from payments_svc.domain.money import currency_of
from payments_svc.domain.payment import MANUAL_CAPTURE_PROVIDERS, PAYABLE, CaptureMethod, PaymentStatus
from payments_svc.services.attempts import ended_providers, queue_attempt, start_attempt, switch_attempt
from payments_svc.services.payments import is_expired
from payments_svc.services.providers import ProviderInfo, ProvidersPort, StartedPayment, StartRequest
from payments_svc.services.uow import PaymentsUnitOfWork


@dataclass(frozen=True)
class CheckoutDeps:
    uow: Callable[[], PaymentsUnitOfWork]
    providers: ProvidersPort
    checkout_base_url: str


async def _load(deps: CheckoutDeps, token: str) -> Payment:
    """The payment as it is now, unlocked, outside any session (one round trip): its changes go out
    as explicit writes guarded by ``payment_unchanged``."""
    async with deps.uow() as uow:
        payment = await payment_by_checkout_token(uow, token)
    if payment is None:
        raise NotFound("checkout")
    return payment


async def _reload(deps: CheckoutDeps, payment: Payment) -> Payment:
    async with deps.uow() as uow:
        current = await payment_snapshot(uow, payment.tenant_id, payment.id)
    assert current is not None, "payments are never deleted"
    return current


# Providers that only ever play the provider's side (no money moves): never offered to a live payment,
# whatever providers-svc lists (it filters them out for a live token too; this is the second lock).
TEST_PROVIDERS = frozenset({"sandbox"})


def is_test_provider(name: str, info: ProviderInfo | None = None) -> bool:
    return name in TEST_PROVIDERS or (info is not None and info.livemode is False)


async def _allowed_providers(deps: CheckoutDeps, payment: Payment) -> list[ProviderInfo]:
    available = await deps.providers.available(payment.tenant_id, payment.currency, livemode=payment.livemode)
    if payment.livemode:
        available = [p for p in available if not is_test_provider(p.name, p)]
    if payment.capture_method == CaptureMethod.MANUAL:
        # Only a provider that can hold the funds for a later capture (Payme and Click cannot).
        available = [p for p in available if p.manual_capture]
    if payment.allowed_providers is None:
        return available
    wanted = set(payment.allowed_providers)
    return [p for p in available if p.name in wanted]


def outcome(payment: Payment) -> PaymentStatus:
    """The status the payer is shown: an overdue payment the sweeper has not closed yet is already
    closed for the payer (API.md: the token stops working once the payment is terminal or expired)."""
    status = PaymentStatus(payment.status)
    if status in PAYABLE and is_expired(payment):
        return closed_status(payment)
    return status


async def _attempts(deps: CheckoutDeps, payment: Payment) -> list[PaymentAttempt]:
    if not payment.attempt_count:
        return []  # never started: no attempt to read
    async with deps.uow() as uow:
        return await attempt_snapshots(uow, payment.id)


def _may_pay_with(payment: Payment, provider: str) -> bool:
    """What the payment itself allows (its ``providers`` list, its capture method). Whether the tenant
    has the provider in the payment's mode and currency is providers-svc's to say when the attempt
    starts (``provider_not_allowed`` then too): asking it first would cost a call per click."""
    if payment.allowed_providers is not None and provider not in payment.allowed_providers:
        return False
    return payment.capture_method != CaptureMethod.MANUAL or provider in MANUAL_CAPTURE_PROVIDERS


async def offered(deps: CheckoutDeps, payment: Payment) -> list[ProviderInfo]:
    """The providers a payer of ``payment`` would be offered now (its mode, capture method, list)."""
    return await _allowed_providers(deps, payment)


async def checkout_view(deps: CheckoutDeps, token: str) -> tuple[str, dict[str, Any]]:
    """The payment's tenant id (for the gateway, never shown), and the view: nothing secret, no ids
    beyond the order reference, no tenant id, no provider transaction. A final or expired payment shows
    only its outcome: no providers to choose."""
    payment = await _load(deps, token)
    status = outcome(payment)
    providers: list[ProviderInfo] = []
    if status in PAYABLE:
        tried = ended_providers(await _attempts(deps, payment))
        providers = [p for p in await _allowed_providers(deps, payment) if p.name not in tried]
    currency = currency_of(payment.currency)
    return payment.tenant_id, {
        "livemode": payment.livemode,
        "status": status,
        "amount": payment.amount,
        "currency": payment.currency,
        "currency_exponent": currency.exponent if currency else 2,
        "description": payment.description,
        "order_id": payment.order_id,
        "merchant": {"display_name": payment.merchant_name or ""},
        "providers": [{"name": p.name, "display_name": p.display_name} for p in providers],
        "provider": payment.provider,
        "return_url": payment.return_url,
        "expires_at": payment.expires_at.isoformat().replace("+00:00", "Z"),
        "failure_message": payment.failure_message,
        # After a failed attempt: which provider it was (the page says "your payment with X did not go
        # through"), None otherwise.
        "failed_provider": await _failed_provider(deps, payment) if payment.failure_code is not None else None,
        "attempt_count": payment.attempt_count or 0,
    }


async def _failed_provider(deps: CheckoutDeps, payment: Payment) -> str | None:
    failed = [a for a in await _attempts(deps, payment) if a.status in _FAILED_ATTEMPTS]
    return failed[-1].provider if failed else None


_FAILED_ATTEMPTS = (AttemptStatus.FAILED, AttemptStatus.CANCELLED)


def ensure_open(payment: Payment) -> None:
    """409 ``invalid_state`` with the payment's outcome (``payment_status``, ``failure_message``) unless the
    payer may still pay it."""
    status = outcome(payment)
    if status not in PAYABLE:
        raise ProblemError(
            409,
            "invalid_state",
            f"The payment is {status} and can no longer be paid.",
            extensions={"payment_status": str(status), "failure_message": payment.failure_message},
        )


async def pay(deps: CheckoutDeps, token: str, provider: str) -> str:
    """Start (or resume) the payment at ``provider``; return where to send the payer.

    While another provider's attempt is pending, the payer may switch only if that attempt is voided
    at its provider first (it can then take no money): a provider that took or is taking the money
    keeps the payment (409). The new provider's transaction is opened before the void, so a failed
    start leaves the pending attempt as it was; one opened for a switch that is then refused is closed
    with the payment (``lifecycle.expire_due`` cancels every transaction of the payment)."""
    payment = await _load(deps, token)
    ensure_open(payment)
    if payment.livemode and is_test_provider(provider):
        raise ProblemError(
            422,
            "test_provider_in_livemode",
            f"{provider} is a test provider: it never moves a live payment.",
        )
    resuming = payment.status == PaymentStatus.PROVIDER_PENDING and payment.provider == provider
    if not resuming and provider in ended_providers(await _attempts(deps, payment)):
        raise InvalidState(f"This payment was already tried with {provider}; choose another way to pay.")
    if not _may_pay_with(payment, provider):
        raise provider_not_allowed(provider)
    started = await deps.providers.start(
        payment.tenant_id,
        StartRequest(
            payment_id=payment.id,
            provider=provider,
            amount=payment.amount,
            currency=payment.currency,
            order_id=payment.order_id,
            description=payment.description,
            return_url=f"{deps.checkout_base_url}/c/{token}/return",
            expires_at=payment.expires_at,
            customer=payment.customer,
            capture_method=payment.capture_method,
        ),
        livemode=payment.livemode,
    )
    switching_from = None
    if payment.status == PaymentStatus.PROVIDER_PENDING and not resuming:
        switching_from = payment.provider_transaction_id
        if switching_from is None:  # no attempt to void (never so once started): nothing to switch from
            raise InvalidState(f"This payment is already being paid with {payment.provider}.")
        if not await deps.providers.void(payment.tenant_id, payment.id, switching_from, livemode=payment.livemode):
            raise InvalidState(
                f"The payment with {payment.provider} is already under way and can no longer be switched."
            )
    if switching_from is not None:
        await _switch(deps, payment, provider, started, switching_from)
        return started.redirect_url
    current = payment
    for _ in range(_PAY_ROUNDS):
        ensure_open(current)
        if current.status != PaymentStatus.CREATED:
            if current.provider == provider:
                return started.redirect_url  # resumed, or the same payer's concurrent click
            raise InvalidState(f"This payment is already being paid with {current.provider}.")
        async with deps.uow() as uow:
            unchanged = payment_unchanged(current)
            if await uow.commit_unless_exists(
                queue_attempt(uow, current, provider, started, deps.checkout_base_url), unchanged
            ):
                return started.redirect_url
        current = await _reload(deps, current)  # moved meanwhile: decided again on what it is now
    raise InvalidState("The payment kept changing; try again.")


# A payment moves a handful of times in its life, so a few rounds always settle a race of clicks.
_PAY_ROUNDS = 5


async def _switch(
    deps: CheckoutDeps, payment: Payment, provider: str, started: StartedPayment, switching_from: str
) -> None:
    """The pending attempt was voided at its provider: the new one takes its place, under the row lock."""
    async with deps.uow() as uow:
        locked = await PaymentRepository(uow.session, payment.tenant_id).get(payment.id, for_update=True)
        assert locked is not None
        ensure_open(locked)
        if locked.status == PaymentStatus.CREATED:  # the voided attempt failed meanwhile
            await start_attempt(uow, locked, provider, started, deps.checkout_base_url)
        elif locked.provider == provider:
            return  # the same payer's concurrent click
        elif locked.provider_transaction_id == switching_from:
            await switch_attempt(uow, locked, provider, started)
        else:
            raise InvalidState(f"This payment is already being paid with {locked.provider}.")
        await uow.commit()


def provider_not_allowed(provider: str) -> ProblemError:
    return ProblemError(422, "provider_not_allowed", f"{provider} is not available for this payment.")
