"""Octo (octo.uz) on provider accounts: ``OctoProvider.bind(account)`` gives the adapter that pays
through that account's shop (PROTOCOLS.md §3), over ``OctoClient``.

Octo assigns its payment UUID up front, so it is the transaction's ``provider_reference``; our
transaction id is the ``shop_transaction_id``, which Octo dedupes, so a retried start is one payment.
The simulator account is served by our fake Octo server (``simulators/octo``), whose address is
computed here from the settings, never stored on the account (the embedded mode's ports change)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import aiohttp
from billing_contracts.envelope import utcnow

from providers_svc.adapters.base import (
    CaptureResult,
    PaymentProvider,
    ProviderRejectedError,
    ProviderUnavailableError,
    RefundResult,
    StartResult,
    StatusResult,
)
from providers_svc.adapters.octo_client import OctoClient
from providers_svc.domain.accounts import BoundAccount
from providers_svc.domain.refunds import SIMULATOR_OUTCOME_HEADER, Refund, RefundStatus, simulated_outcome
from providers_svc.domain.transactions import Transaction, TransactionStatus
from providers_svc.protocols.octo.amounts import AmountError, from_major
from providers_svc.protocols.octo.callbacks import SignatureFormula
from providers_svc.protocols.octo.requests import PreparePayment, ShopCredentials
from providers_svc.protocols.octo.responses import PaymentState

NAME = "octo"
CURRENCIES = frozenset({"UZS", "USD"})
# Octo's word for a payment that will never take money. `failed` is not in Octo's documents, but
# paytechuz accepts it (§3.3): read it as final too, never as money taken.
CLOSED = frozenset({"canceled", "failed"})
_REFUND_STATUSES: dict[str, Literal["pending", "succeeded", "failed"]] = {
    "succeeded": "succeeded",
    "canceled": "failed",
    "error": "failed",
}


def shop_of(account: BoundAccount) -> ShopCredentials:
    return ShopCredentials(shop_id=int(account.credentials["shop_id"]), secret=account.credentials["secret"])


def formula_of(account: BoundAccount) -> SignatureFormula:
    return "unique_key" if account.settings.get("signature_formula") == "unique_key" else "documented"


def signature_key_of(account: BoundAccount) -> str:
    """The key Octo's callbacks to ``account`` are signed with: the shop secret under the documented
    reading; under the unique_key one, the key Octo's team issued (``credentials.unique_key``). An account
    stored before that was a credential of its own has none and keeps the secret it was checked with."""
    if formula_of(account) == "unique_key":
        return account.credentials.get("unique_key") or account.credentials["secret"]
    return account.credentials["secret"]


def our_status(state: PaymentState) -> TransactionStatus:
    """Octo's status in our terms; a status the documents do not name is still pending (never guessed)."""
    if state.status in CLOSED:
        return TransactionStatus.FAILED
    return state.ours or TransactionStatus.PENDING


@dataclass(frozen=True)
class OctoAdapter:
    """One account's Octo shop. Test-only exactly when the account is a test one."""

    account: BoundAccount
    client: OctoClient
    notify_url: str
    # Octo's return page of ours (api/octo_pages.py), for a payment that brings no return URL.
    return_base: str
    name: str = NAME
    display_name: str = "Octo"
    currencies: frozenset[str] = CURRENCIES

    @property
    def test_only(self) -> bool:
        return self.account.test

    @property
    def starts_locally(self) -> bool:
        return False  # prepare_payment at Octo gives the pay URL

    @property
    def auto_capture(self) -> bool:
        return self.account.settings.get("auto_capture", "true") == "true"

    async def start(self, txn: Transaction) -> StartResult:
        state = await self.client.prepare(
            PreparePayment(
                shop_transaction_id=txn.id,
                amount=txn.amount,
                currency=txn.currency,
                description=(txn.description or f"Payment {txn.payment_id}")[:250],
                # Octo requires one (§3.2); without the payment's own, the payer comes back to our page
                # saying where the payment stands (Payme and Click, given none, keep the payer on theirs).
                return_url=txn.return_url or f"{self.return_base}/{txn.id}",
                notify_url=self.notify_url,
                # A manual-capture payment is two-stage whatever the account says: the tenant captures.
                auto_capture=self.auto_capture and not txn.manual,
                test=self.account.test,
                init_time=utcnow(),
                ttl_minutes=max(1, int((txn.expires_at - utcnow()).total_seconds() // 60)),
            )
        )
        if state.pay_url is None:
            raise ProviderRejectedError("octo_no_pay_url", "Octo gave no pay page for the payment")
        return StartResult(redirect_url=state.pay_url, provider_reference=state.octo_payment_uuid)

    async def cancel(self, txn: Transaction) -> bool:
        if txn.provider_reference is None:
            return True  # never prepared at Octo (the start failed before): nothing to take money with
        state = await self.client.status(txn.id)
        if state.status == "succeeded":
            return False
        if state.status in CLOSED:
            return True
        try:
            state = await self.client.set_accept(state.octo_payment_uuid, "cancel")
        except ProviderRejectedError:
            # Octo would not cancel it (a pay page not yet used cannot always be): ask again what it is.
            state = await self.client.status(txn.id)
        # A payment still waiting for its payer takes nothing from a cancelled transaction: a later
        # success for it is a `success_for_final_payment` anomaly (services.callbacks), never applied.
        return state.status not in ("succeeded", "waiting_for_capture")

    async def capture(self, txn: Transaction, amount: int) -> CaptureResult:
        """``/set_accept`` ``capture`` with ``final_amount`` (PROTOCOLS.md §3.1): Octo's payment UUID is the
        key, so a repeat finds the payment succeeded and answers with what it took."""
        if txn.provider_reference is None:
            raise ProviderRejectedError("octo_not_authorised", "The payment was never made at Octo")
        state = await self.client.status(txn.id)
        if state.status == "waiting_for_capture":
            try:
                state = await self.client.set_accept(
                    state.octo_payment_uuid, "capture", final_amount=amount, currency=txn.currency
                )
            except ProviderRejectedError:
                state = await self.client.status(txn.id)  # decided meanwhile: its word stands
        if state.status != "succeeded":
            raise ProviderRejectedError(f"octo_{state.status}", f"Octo's payment is {state.status}, not captured")
        taken = amount
        if state.total_sum is not None:
            try:
                taken = from_major(state.total_sum, txn.currency)
            except (AmountError, KeyError):
                raise ProviderUnavailableError("octo named a captured sum outside the protocol") from None
        return CaptureResult(taken, state.octo_payment_uuid)

    async def fetch_status(self, txn: Transaction) -> StatusResult:
        """The status call in our terms, with the sum Octo names (None when it names none)."""
        state = await self.client.status(txn.id)
        status = our_status(state)
        failed = status is TransactionStatus.FAILED
        amount = None
        if state.total_sum is not None:
            try:
                amount = from_major(state.total_sum, txn.currency)
            except (AmountError, KeyError):
                # Never guessed: a sum that is no amount of ours moves nothing; asked again later.
                raise ProviderUnavailableError("octo's status call named a sum outside the protocol") from None
        return StatusResult(
            status=status,
            authorized=state.status == "waiting_for_capture" and txn.manual,
            provider_reference=state.octo_payment_uuid,
            failure_code=f"octo_{state.status}" if failed else None,
            failure_message="Octo cancelled the payment" if failed else None,
            amount=amount,
            currency=txn.currency if amount is not None else None,
        )

    async def refund(
        self, txn: Transaction, *, refund_id: str, amount: int, reason: str | None, retry: bool = False
    ) -> RefundResult:
        if txn.provider_reference is None:
            raise ProviderRejectedError("octo_not_paid", "The payment was never made at Octo")
        headers: dict[str, str] | None = None
        if self.account.simulator and (outcome := simulated_outcome(reason)) is not None:
            headers = {SIMULATOR_OUTCOME_HEADER: outcome}
        return await self._refund(txn, refund_id, amount, headers)

    async def refund_status(
        self, txn: Transaction, *, refund_id: str, provider_refund_id: str | None, amount: int
    ) -> RefundResult:
        # Octo documents no refund status call, but a repeat of a shop_refund_id is the same refund
        # (Octo dedupes it) and is answered with that refund's status: asking again is the status call.
        if txn.provider_reference is None:
            raise ProviderRejectedError("octo_not_paid", "The payment was never made at Octo")
        return await self._refund(txn, refund_id, amount, None)

    async def refund_on_statement(self, txn: Transaction, refund: Refund) -> RefundResult | None:
        """Octo's word on a refund, asked as ``refund_status`` asks: the same ``shop_refund_id`` again,
        which Octo answers with the refund it holds. Only a refund Octo accepted (pending or made) is
        asked, so the repeat can never be a new refund; a refusal of the repeat is no record of it."""
        if refund.status not in (RefundStatus.PENDING, RefundStatus.SUCCEEDED) or txn.provider_reference is None:
            return None
        try:
            return await self._refund(txn, refund.id, refund.amount, None)
        except ProviderRejectedError:
            return None

    async def _refund(
        self, txn: Transaction, refund_id: str, amount: int, headers: dict[str, str] | None
    ) -> RefundResult:
        assert txn.provider_reference is not None
        try:
            # shop_refund_id = our refund id: Octo drops a repeat of it, so a retried refund is one refund.
            status = await self.client.refund(txn.provider_reference, refund_id, amount, txn.currency, headers=headers)
        except ProviderRejectedError as exc:
            if exc.code == "octo_3":
                raise ProviderRejectedError(
                    "octo_refund_amount_refused",
                    "Octo refused the refund amount (at least 1 USD equivalent, at most 10 million so'm per "
                    "refund, never more than the payment)",
                ) from None
            raise
        result = _REFUND_STATUSES.get(status, "pending")
        failed = result == "failed"
        return RefundResult(
            status=result,
            provider_refund_id=refund_id,
            failure_code=f"octo_refund_{status}" if failed else None,
            failure_message=f"Octo refund status {status}" if failed else None,
        )


@dataclass(frozen=True)
class OctoProvider:
    """The account provider: ``bind`` is cheap (no I/O), the session is the app's and opens with it."""

    http: Callable[[], aiohttp.ClientSession]
    notify_url: str
    simulator_base: str
    return_base: str
    name: str = NAME
    display_name: str = "Octo"
    currencies: frozenset[str] = CURRENCIES

    def client_for(self, account: BoundAccount) -> OctoClient:
        base = self.simulator_base if account.simulator else account.settings["api_base"]
        return OctoClient(self.http, base, shop_of(account))

    def bind(self, account: BoundAccount) -> PaymentProvider:
        return OctoAdapter(account, self.client_for(account), self.notify_url, self.return_base)
