"""Click (PROTOCOLS.md §1) as an account provider: one adapter per Click merchant account.

``start`` sends the payer to Click's pay page (§1.9), or, bound to the simulator account, to our Click
simulator's page. Money moves only through Click's Prepare/Complete callbacks (``services/click.py``);
``fetch_status`` and ``refund`` use the Merchant API (§1.10)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import aiohttp
from billing_contracts.envelope import utcnow

from providers_svc.adapters.base import (
    CaptureResult,
    OperationNotSupportedError,
    ProviderRejectedError,
    ProviderUnavailableError,
    RefundOutcomeUnknownError,
    RefundResult,
    StartResult,
    StatusResult,
)
from providers_svc.adapters.click_merchant import MERCHANT_PATH, ClickMerchantClient
from providers_svc.domain.accounts import BoundAccount
from providers_svc.domain.refunds import SIMULATOR_OUTCOME_HEADER, Refund, simulated_outcome
from providers_svc.domain.transactions import Transaction, TransactionStatus
from providers_svc.protocols.click import merchant_api
from providers_svc.protocols.click.credentials import ClickCredentials
from providers_svc.protocols.click.urls import pay_url
from providers_svc.services.click_accounts import click_credentials

NAME = "click"
# Click's dates (status by our id, the reporting month of a reversal) are Tashkent's: UTC+5, no DST.
TASHKENT = timezone(timedelta(hours=5))
# payment_status of a successful payment in the Merchant API's answers.
PAID = 2


def simulator_page(public_gateway_url: str, txn_id: str) -> str:
    return f"{public_gateway_url.rstrip('/')}/simulators/click/pay/{txn_id}"


def simulator_merchant_base(public_gateway_url: str) -> str:
    return f"{public_gateway_url.rstrip('/')}/simulators/click/merchant"


@dataclass(frozen=True)
class ClickProvider:
    """The ``AccountProvider`` of Click; ``http`` is the app's outgoing session (open while it runs)."""

    public_gateway_url: str
    http: Callable[[], aiohttp.ClientSession]
    clock: Callable[[], datetime] = utcnow

    @property
    def name(self) -> str:
        return NAME

    @property
    def display_name(self) -> str:
        return "Click"

    @property
    def currencies(self) -> frozenset[str]:
        return frozenset({"UZS"})

    def bind(self, account: BoundAccount) -> ClickPayments:
        if account.simulator:
            base = simulator_merchant_base(self.public_gateway_url)
        else:
            base = account.settings["api_base"].rstrip("/") + MERCHANT_PATH
        return ClickPayments(self, account, ClickMerchantClient(self.http, base))


@dataclass(frozen=True)
class ClickPayments:
    """One account's Click: the ``PaymentProvider`` a payment paid through that account uses."""

    provider: ClickProvider
    account: BoundAccount
    merchant: ClickMerchantClient

    name = NAME
    display_name = "Click"

    @property
    def currencies(self) -> frozenset[str]:
        return self.provider.currencies & self.account.currencies

    @property
    def test_only(self) -> bool:
        return self.account.test

    @property
    def starts_locally(self) -> bool:
        return True  # the pay URL (or the simulator page) of the payment

    def _credentials(self) -> ClickCredentials:
        credentials = click_credentials(self.account)
        if credentials is None:
            raise ProviderRejectedError(
                "click_invalid_credentials", f"Click account {self.account.id}: service_id and the ids must be numbers"
            )
        return credentials

    async def start(self, txn: Transaction) -> StartResult:
        credentials = self._credentials()
        if txn.currency not in self.currencies:
            raise ProviderRejectedError("currency_not_supported", f"Click does not take {txn.currency}")
        if self.account.simulator:
            return StartResult(simulator_page(self.provider.public_gateway_url, txn.id))
        # Our payment id comes back as merchant_trans_id (API.md "Provider callbacks").
        return StartResult(
            pay_url(credentials, amount=txn.amount, transaction_param=txn.payment_id, return_url=txn.return_url)
        )

    async def capture(self, txn: Transaction, amount: int) -> CaptureResult:
        raise OperationNotSupportedError("Click takes the money when the payer pays: nothing to capture")

    async def cancel(self, txn: Transaction) -> bool:
        # Click has no call to cancel an unpaid attempt. A confirmed reservation and a succeeded
        # transaction are written together, so "succeeded" is exactly "Click took the money"; once we
        # cancel, a later Prepare or Complete of the order is refused (-9).
        return txn.status is not TransactionStatus.SUCCEEDED

    async def fetch_status(self, txn: Transaction) -> StatusResult:
        """Click's word on our payment id. Click finds it by the day (Tashkent) it was paid, so each
        day the transaction could be paid on is asked, from its start to its expiry (or today)."""
        answer = None
        for day in _payable_days(txn, self.provider.clock()):
            request = merchant_api.payment_status_by_merchant_trans_id(
                self._credentials(), txn.payment_id, day, timestamp=self._timestamp()
            )
            answer = await self.merchant.send(request)
            if answer.status != 404:
                break
        if answer is None or answer.status == 404:
            return StatusResult(TransactionStatus.PENDING)  # Click has no payment for it (yet)
        payment_id, status = answer.body.get("payment_id"), answer.body.get("payment_status")
        reference = str(payment_id) if isinstance(payment_id, int) and not isinstance(payment_id, bool) else None
        if status == PAID:
            return StatusResult(TransactionStatus.SUCCEEDED, provider_reference=reference)
        if isinstance(status, int) and status < 0 and txn.status is TransactionStatus.SUCCEEDED:
            # A payment Click confirmed leaves its paid status only by a reversal (``_reversed``).
            return StatusResult(TransactionStatus.SUCCEEDED, provider_reference=reference, refunded=True)
        if isinstance(status, int) and status < 0:
            return StatusResult(
                TransactionStatus.FAILED,
                provider_reference=reference,
                failure_code=f"click_{status}",
                failure_message="Click reports the payment failed or cancelled.",
            )
        return StatusResult(TransactionStatus.PENDING, provider_reference=reference)

    async def refund(
        self, txn: Transaction, *, refund_id: str, amount: int, reason: str | None, retry: bool = False
    ) -> RefundResult:
        """A reversal: Click documents only full reversals, of a card payment, in its reporting month.
        Click never tells us how a payment was paid, so a payment it cannot reverse (not by card, or a
        UZCARD that refuses) is learned from its refusal (``click_<code>``).

        Click has no idempotency key and refuses to reverse a payment twice, so a ``retry`` (an earlier
        reversal may have gone through, its answer lost) first asks the payment's status: reversed →
        succeeded, without asking again; and a refusal of the repeated reversal proves nothing
        (``RefundOutcomeUnknownError``, never a failure)."""
        if amount != txn.amount:
            raise ProviderRejectedError("click_partial_refund_unsupported", "Click reverses whole payments only")
        if txn.status is not TransactionStatus.SUCCEEDED:
            raise ProviderRejectedError("click_not_paid", "Only a succeeded Click payment can be reversed")
        reference = txn.provider_reference
        if reference is None or not reference.isdigit():
            raise ProviderRejectedError("click_no_payment_id", "Click's payment number is unknown for this payment")
        if retry and await self._reversed(int(reference)):
            return RefundResult("succeeded", provider_refund_id=reference)
        if not in_reversal_period(txn.updated_at, self.provider.clock()):
            raise ProviderRejectedError(
                "click_reversal_period_over",
                "Click reverses payments of the current month only (last month's on the 1st)",
            )
        request = merchant_api.payment_reversal(self._credentials(), int(reference), timestamp=self._timestamp())
        extra = None
        if self.account.simulator and simulated_outcome(reason) == "fail":
            extra = {SIMULATOR_OUTCOME_HEADER: "fail"}
        try:
            answer = await self.merchant.send(request, extra_headers=extra)
        except ProviderRejectedError as exc:
            if retry:
                raise RefundOutcomeUnknownError(exc.code, f"{exc} (on a repeated reversal)") from exc
            raise
        if answer.status == 404:
            if retry:
                raise RefundOutcomeUnknownError("click_payment_not_found", "Click knows no such payment to reverse")
            raise ProviderRejectedError("click_payment_not_found", "Click knows no such payment to reverse")
        return RefundResult("succeeded", provider_refund_id=str(answer.body.get("payment_id", reference)))

    async def refund_on_statement(self, txn: Transaction, refund: Refund) -> RefundResult | None:
        """A reversal is the whole payment given back, under Click's payment number: the payment's
        status says whether it was made (read-only; a statement never reverses anything)."""
        reference = txn.provider_reference
        if reference is None or not reference.isdigit() or not await self._reversed(int(reference)):
            return None
        return RefundResult("succeeded", provider_refund_id=reference)

    async def _reversed(self, payment_id: int) -> bool:
        """Whether Click reports its payment ``payment_id`` reversed (Merchant API payment status). A
        payment we hold paid leaves Click's paid status (2) only by a reversal, so any negative status
        is one; anything Click cannot answer clearly is no answer (``ProviderUnavailableError``: asked
        again later), never a reason to reverse again."""
        request = merchant_api.payment_status(self._credentials(), payment_id, timestamp=self._timestamp())
        try:
            answer = await self.merchant.send(request)
        except ProviderRejectedError as exc:
            raise ProviderUnavailableError(f"click payment status refused ({exc.code})") from None
        status = answer.body.get("payment_status") if answer.status != 404 else None
        if not isinstance(status, int) or isinstance(status, bool) or not (status == PAID or status < 0):
            raise ProviderUnavailableError(f"click payment status of {payment_id} is not conclusive: {status!r}")
        return status < 0

    async def refund_status(
        self, txn: Transaction, *, refund_id: str, provider_refund_id: str | None, amount: int
    ) -> RefundResult:
        # A reversal is answered at once (never pending), so this is asked only of one whose answer was
        # lost: the payment's status says whether it was made, and only if not is it asked again.
        return await self.refund(txn, refund_id=refund_id, amount=amount, reason=None, retry=True)

    def _timestamp(self) -> int:
        return int(self.provider.clock().timestamp())


def _payable_days(txn: Transaction, now: datetime) -> list[date]:
    """The Tashkent days from the transaction's start to its expiry or ``now``, whichever is first (a
    payment lives at most a day: two or three days at most)."""
    first = txn.created_at.astimezone(TASHKENT).date()
    last = max(first, min(txn.expires_at, now).astimezone(TASHKENT).date())
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def in_reversal_period(paid_at: datetime, now: datetime) -> bool:
    """The current reporting month (Tashkent), or last month's payments on the 1st of this one."""
    paid, today = paid_at.astimezone(TASHKENT), now.astimezone(TASHKENT)
    if (paid.year, paid.month) == (today.year, today.month):
        return True
    previous = today.replace(day=1) - timedelta(days=1)
    return today.day == 1 and (paid.year, paid.month) == (previous.year, previous.month)
