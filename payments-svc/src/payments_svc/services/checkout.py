"""The payer's side: the public view of a payment and "pay with this provider"."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from billing_runtime.errors import ProblemError

from payments_svc.db.models import Payment
from payments_svc.db.repositories import PaymentRepository, payment_by_checkout_token
from payments_svc.domain.errors import InvalidState, NotFound
from payments_svc.domain.money import currency_of
from payments_svc.domain.payment import PaymentStatus
from payments_svc.services.payments import Actor, ensure_payable, record_status
from payments_svc.services.providers import ProviderInfo, ProvidersPort, StartRequest
from payments_svc.services.uow import PaymentsUnitOfWork


@dataclass(frozen=True)
class CheckoutDeps:
    uow: Callable[[], PaymentsUnitOfWork]
    providers: ProvidersPort
    checkout_base_url: str


async def _load(deps: CheckoutDeps, token: str) -> Payment:
    async with deps.uow() as uow:
        payment = await payment_by_checkout_token(uow.session, token)
    if payment is None:
        raise NotFound("checkout")
    return payment


# Providers that only ever play the provider's side (no money moves): never offered to a live payment,
# whatever providers-svc lists (it filters them out for a live token too; this is the second lock).
TEST_PROVIDERS = frozenset({"sandbox"})


def is_test_provider(name: str, info: ProviderInfo | None = None) -> bool:
    return name in TEST_PROVIDERS or (info is not None and info.livemode is False)


async def _allowed_providers(deps: CheckoutDeps, payment: Payment) -> list[ProviderInfo]:
    available = await deps.providers.available(payment.tenant_id, payment.currency, livemode=payment.livemode)
    if payment.livemode:
        available = [p for p in available if not is_test_provider(p.name, p)]
    if payment.allowed_providers is None:
        return available
    wanted = set(payment.allowed_providers)
    return [p for p in available if p.name in wanted]


async def checkout_view(deps: CheckoutDeps, token: str) -> tuple[str, dict[str, Any]]:
    """The payment's tenant id (for the gateway, never shown), and the view: nothing secret, no ids
    beyond the order reference, no tenant id, no provider transaction."""
    payment = await _load(deps, token)
    payable = payment.status in (PaymentStatus.CREATED, PaymentStatus.PROVIDER_PENDING)
    providers = await _allowed_providers(deps, payment) if payable else []
    currency = currency_of(payment.currency)
    return payment.tenant_id, {
        "livemode": payment.livemode,
        "status": payment.status,
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
    }


async def pay(deps: CheckoutDeps, token: str, provider: str) -> str:
    """Start (or resume) the payment at ``provider``; return where to send the payer."""
    payment = await _load(deps, token)
    ensure_payable(payment)
    if payment.livemode and is_test_provider(provider):
        raise ProblemError(
            422,
            "test_provider_in_livemode",
            f"{provider} is a test provider: it never moves a live payment.",
        )
    if payment.status == PaymentStatus.PROVIDER_PENDING and payment.provider != provider:
        # One provider per payment: a second one could take the payer's money a second time.
        raise InvalidState(f"This payment is already being paid with {payment.provider}.")
    if provider not in {p.name for p in await _allowed_providers(deps, payment)}:
        raise ProblemError(
            422,
            "provider_not_allowed",
            f"{provider} is not available for this payment.",
        )
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
        ),
        livemode=payment.livemode,
    )
    async with deps.uow() as uow:
        locked = await PaymentRepository(uow.session, payment.tenant_id).get(payment.id, for_update=True)
        assert locked is not None
        ensure_payable(locked)
        if locked.status == PaymentStatus.CREATED:
            locked.provider = provider
            locked.provider_transaction_id = started.provider_transaction_id
            locked.provider_reference = started.provider_reference
            record_status(uow, locked, PaymentStatus.PROVIDER_PENDING, Actor("payer"), deps.checkout_base_url)
        elif locked.provider != provider:
            raise InvalidState(f"This payment is already being paid with {locked.provider}.")
        await uow.commit()
    return started.redirect_url
