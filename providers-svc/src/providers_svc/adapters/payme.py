"""Payme through provider accounts (PROTOCOLS.md §2): Payme calls us (``POST /billing/payme``), so the adapter
only sends the payer to Payme's checkout and reads what Payme's calls stored in ``payme_transactions``.

Bound to a simulator account, the payer goes to our Payme simulator's page instead
(``/simulators/payme/pay/{ptx}``), which then plays Payme against our real endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from providers_svc.adapters.base import (
    CaptureResult,
    OperationNotSupportedError,
    PaymentProvider,
    ProviderRejectedError,
    RefundResult,
    StartResult,
    StatusResult,
)
from providers_svc.db.payme import PaymeRepository
from providers_svc.domain.accounts import BoundAccount
from providers_svc.domain.transactions import Transaction, TransactionStatus
from providers_svc.protocols.payme.amounts import to_tiyin
from providers_svc.protocols.payme.checkout import Language, checkout_url
from providers_svc.protocols.payme.states import TransactionState
from providers_svc.services.uow import UowFactory

NAME = "payme"
CURRENCIES = frozenset({"UZS"})
# Performed at some point: Payme took the money (a later cancel gave it back as a reversal, not undone).
_PERFORMED = (int(TransactionState.PERFORMED), int(TransactionState.CANCELLED_AFTER_PERFORM))


@dataclass(frozen=True)
class PaymeProvider:
    """The ``AccountProvider`` of Payme: ``bind`` is cheap (no I/O)."""

    uow: UowFactory
    public_gateway_url: str
    name: str = NAME
    display_name: str = "Payme"
    currencies: frozenset[str] = CURRENCIES

    def bind(self, account: BoundAccount) -> PaymentProvider:
        return PaymeAdapter(self.uow, account, self.public_gateway_url.rstrip("/"))


@dataclass(frozen=True)
class PaymeAdapter:
    uow: UowFactory
    account: BoundAccount
    gateway: str
    name: str = NAME
    display_name: str = "Payme"
    currencies: frozenset[str] = CURRENCIES

    @property
    def test_only(self) -> bool:
        return self.account.test

    @property
    def starts_locally(self) -> bool:
        return True  # the checkout URL (or the simulator page) of the payment

    async def start(self, txn: Transaction) -> StartResult:
        """Payme assigns its transaction id only when it calls us (CreateTransaction): no reference here."""
        if self.account.simulator:
            return StartResult(f"{self.gateway}/simulators/payme/pay/{txn.id}")
        try:
            url = checkout_url(
                merchant_id=self.account.credentials["merchant_id"],
                account_field=self.account.settings["account_field"],
                payment_id=txn.payment_id,
                amount=to_tiyin(txn.amount, txn.currency),
                environment="test" if self.account.test else "production",
                return_url=txn.return_url,
                language=cast("Language", self.account.settings.get("language", "ru")),
            )
        except ValueError as exc:
            # A currency Payme cannot charge, or an id §2.6's format cannot carry (a ";" in it).
            raise ProviderRejectedError("payme_checkout_refused", str(exc)) from None
        return StartResult(url)

    async def capture(self, txn: Transaction, amount: int) -> CaptureResult:
        raise OperationNotSupportedError("Payme takes the money when the payer pays: nothing to capture")

    async def cancel(self, txn: Transaction) -> bool:
        """True unless Payme performed a transaction of this order. A created (state 1) one is left to
        Payme: once our transaction is cancelled, its PerformTransaction is answered -31008 and a new
        CreateTransaction -31051, so Payme cancels it and takes nothing."""
        return not await self._performed(txn)

    async def fetch_status(self, txn: Transaction) -> StatusResult:
        """From our own records: Payme has no status API for merchants (it tells us everything by calling)."""
        async with self.uow() as unit:
            rows = await PaymeRepository(unit.session).of_payment(txn.payment_id)
        performed = [r for r in rows if r.state in _PERFORMED and r.account_id == self.account.id]
        if performed:
            return StatusResult(TransactionStatus.SUCCEEDED, provider_reference=performed[0].payme_id)
        return StatusResult(TransactionStatus.PENDING)

    async def refund(
        self, txn: Transaction, *, refund_id: str, amount: int, reason: str | None, retry: bool = False
    ) -> RefundResult:
        # Payme's Merchant API has no merchant-initiated refund: Payme cancels a performed transaction
        # (CancelTransaction → state -2), recorded in payme_reversals.
        raise OperationNotSupportedError("Payme refunds are initiated by Payme (CancelTransaction)")

    async def refund_status(
        self, txn: Transaction, *, refund_id: str, provider_refund_id: str | None, amount: int
    ) -> RefundResult:
        raise OperationNotSupportedError("Payme refunds are initiated by Payme (CancelTransaction)")

    async def _performed(self, txn: Transaction) -> bool:
        async with self.uow() as unit:
            rows = await PaymeRepository(unit.session).of_payment(txn.payment_id)
        return any(r.state in _PERFORMED for r in rows)
