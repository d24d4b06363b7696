"""The one interface every payment provider adapter implements, and the registry that holds them.

What varies per provider and does *not* belong here: the callback protocol. Each provider's callbacks
live in ``api/callbacks/<provider>.py`` (Click's prepare/complete, Payme's JSON-RPC, Stripe's events),
verify that provider's signature, and hand a verdict to ``services.callbacks``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from providers_svc.domain.accounts import BoundAccount
from providers_svc.domain.refunds import Refund
from providers_svc.domain.transactions import Transaction, TransactionStatus


@dataclass(frozen=True)
class StartResult:
    """Where to send the payer, and the provider's id for the attempt when it assigns one up front
    (Stripe's PaymentIntent/Checkout Session id, Octo's payment UUID). Click and Payme assign theirs
    only in their callbacks, so they return None here."""

    redirect_url: str
    provider_reference: str | None = None


@dataclass(frozen=True)
class StatusResult:
    """The provider's own view of a transaction (used by reconciliation to heal missed callbacks)."""

    status: TransactionStatus
    provider_reference: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    # The money the provider names, in our units; None when its status answer names none (Click's,
    # Payme's, the sandbox bank's): the transaction's own amount is then what the provider was asked.
    amount: int | None = None
    currency: str | None = None
    # Manual capture: a pending transaction whose funds the provider holds, and until when.
    authorized: bool = False
    authorization_expires_at: datetime | None = None
    # The provider took the money and has given all of it back (Click's reversal): a statement says
    # ``refunded`` where ``status`` alone would say the payment never paid.
    refunded: bool = False


@dataclass(frozen=True)
class CaptureResult:
    """The provider captured ``amount`` (minor units) of an authorized payment (releasing the rest)."""

    amount: int
    provider_reference: str | None = None


@dataclass(frozen=True)
class RefundResult:
    """The provider's answer about one refund: ``pending`` until it is done, then ``succeeded`` or
    ``failed`` (with a stable ``failure_code`` such as ``click_-5017`` and a message fit for a tenant)."""

    status: Literal["pending", "succeeded", "failed"]
    provider_refund_id: str | None = None
    failure_message: str | None = None
    failure_code: str | None = None


class ProviderError(Exception):
    """Base of every error an adapter raises on purpose."""


class ProviderUnavailableError(ProviderError):
    """The provider could not be reached or answered with a server error. Nothing was done on our side,
    and the operation is safe to retry (every adapter call is idempotent on our transaction id)."""


class ProviderRejectedError(ProviderError):
    """The provider refused the request for a business reason (amount limits, closed account...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class RefundOutcomeUnknownError(ProviderError):
    """The provider refused a refund asked again after an attempt whose answer was lost, and cannot say
    whether that attempt made it (Click: a second reversal is refused whether or not the first one went
    through). Neither failed nor succeeded: the refund stays unanswered and is an anomaly for review."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class OperationNotSupportedError(ProviderError):
    """The provider (or this adapter, so far) cannot do the operation at all."""


class PaymentProvider(Protocol):
    """One payment provider, as the use cases see it.

    Contract for implementations:
    - Amounts cross this boundary as integer minor units plus ISO 4217 code; an adapter converts to the
      provider's units (Payme tiyin, Click/Octo so'm decimals) and back, nowhere else.
    - Every call is idempotent on ``txn.id``: use it as the provider's idempotency key / merchant
      transaction id, so a retry after a timeout never creates a second attempt at the provider.
    - Credentials come from the adapter's constructor (built in ``create_app``), never from globals.
    - Raise ``ProviderUnavailableError`` for network/5xx failures, ``ProviderRejectedError`` for
      business refusals, ``OperationNotSupportedError`` for what the provider cannot do.
    """

    @property
    def name(self) -> str:
        """Stable identifier: the ``provider`` field of requests, events and ``/billing/<name>``."""
        ...

    @property
    def display_name(self) -> str: ...

    @property
    def currencies(self) -> frozenset[str]:
        """ISO 4217 codes this provider can charge in."""
        ...

    @property
    def test_only(self) -> bool:
        """True for a provider that moves no real money (the sandbox, the simulators): it is never
        offered to, started for, or believed about a live tenant's payment."""
        ...

    @property
    def starts_locally(self) -> bool:
        """True when ``start`` only builds the pay URL from the transaction and the account, calling
        no one: it may then run before the transaction is stored, and the transaction is stored with
        where the payer goes in one statement (the sandbox, Payme, Click). False when it creates
        something at the provider (Octo, Stripe), which must know the stored transaction first."""
        ...

    async def start(self, txn: Transaction) -> StartResult:
        """Create the attempt at the provider (or just build its pay URL) and say where the payer goes."""
        ...

    async def cancel(self, txn: Transaction) -> bool:
        """Make sure the provider will not take money for ``txn``. True when it will not (cancelled now,
        or never started, or already declined); False when it already took the money or is capturing."""
        ...

    async def fetch_status(self, txn: Transaction) -> StatusResult:
        """Ask the provider what happened to ``txn``."""
        ...

    async def capture(self, txn: Transaction, amount: int) -> CaptureResult:
        """Capture ``amount`` of an authorized manual-capture ``txn`` (the provider releases the rest).
        Idempotent on ``txn``: a repeat after a capture answers with what that capture took.
        ``OperationNotSupportedError`` from a provider that cannot hold funds."""
        ...

    async def refund(
        self, txn: Transaction, *, refund_id: str, amount: int, reason: str | None, retry: bool = False
    ) -> RefundResult:
        """Refund ``amount`` minor units of a succeeded ``txn``; ``refund_id`` dedupes retries (a repeat
        after a lost answer is the same refund at the provider). ``retry``: an earlier attempt may have
        reached the provider (its answer lost), so an adapter whose provider forgets (Stripe's keys
        expire after 24 h) or has no key (Click) must find out what that attempt did before asking
        again, and raise ``RefundOutcomeUnknownError`` when a refusal cannot tell."""
        ...

    async def refund_status(
        self, txn: Transaction, *, refund_id: str, provider_refund_id: str | None, amount: int
    ) -> RefundResult:
        """Ask the provider where a refund it accepted (``pending``) stands now."""
        ...


@runtime_checkable
class RefundStatements(Protocol):
    """An adapter whose provider lists no refunds but can be asked about one (Click, Octo): how a
    statement gets a refund line from it."""

    async def refund_on_statement(self, txn: Transaction, refund: Refund) -> RefundResult | None:
        """The provider's word on ``refund`` of ``txn``, asked without ever making a refund; None when
        the provider has no record of it (or cannot be asked without the risk of making one)."""
        ...


class AccountProvider(Protocol):
    """A provider whose payments go through provider accounts (Payme, Click, Octo, Stripe): one adapter
    per account, built from that account's credentials and settings when a payment needs it.

    ``bind`` must be cheap (no I/O): it runs for every start, cancel, status and refund. The adapter
    it returns is test-only exactly when the account is a ``test`` one."""

    @property
    def name(self) -> str: ...

    @property
    def display_name(self) -> str: ...

    @property
    def currencies(self) -> frozenset[str]:
        """Every currency the provider can take; an account's ``currencies`` narrow them."""
        ...

    def bind(self, account: BoundAccount) -> PaymentProvider: ...


class ProviderRegistry:
    """The enabled providers by name, built once in ``create_app``: adapters that need no account (the
    sandbox) and account providers, whose adapters are bound to the account of each payment."""

    def __init__(self, providers: Iterable[PaymentProvider], account_providers: Iterable[AccountProvider] = ()) -> None:
        self._providers: dict[str, PaymentProvider] = {}
        self._account_providers: dict[str, AccountProvider] = {}
        for provider in providers:
            if provider.name in self._providers:
                raise ValueError(f"provider {provider.name!r} registered twice")
            self._providers[provider.name] = provider
        for account_provider in account_providers:
            if account_provider.name in self._providers or account_provider.name in self._account_providers:
                raise ValueError(f"provider {account_provider.name!r} registered twice")
            self._account_providers[account_provider.name] = account_provider

    def get(self, name: str) -> PaymentProvider | None:
        """An adapter that needs no account (the sandbox)."""
        return self._providers.get(name)

    def account_provider(self, name: str) -> AccountProvider | None:
        return self._account_providers.get(name)

    def account_providers(self) -> list[AccountProvider]:
        return [p for _, p in sorted(self._account_providers.items())]

    def names(self) -> list[str]:
        return sorted([*self._providers, *self._account_providers])

    def for_currency(self, currency: str | None, *, livemode: bool = False) -> list[PaymentProvider]:
        """The adapters needing no account that accept ``currency`` (any when None); for a live caller,
        only those that move real money."""
        return [
            p
            for _, p in sorted(self._providers.items())
            if (currency is None or currency in p.currencies) and not (livemode and p.test_only)
        ]
