"""Which adapter pays a tenant's payment at a provider: the sandbox's own, or one bound to the provider
account the tenant was assigned (or, for a test tenant without one, to the provider's simulator account).
API.md "Provider accounts" gives the rules; this is the one place that applies them."""

from __future__ import annotations

from dataclasses import dataclass

from billing_runtime.key_ring import KeyRing
from billing_runtime.problems import ProblemError

from providers_svc.adapters.base import PaymentProvider, ProviderRegistry
from providers_svc.domain.accounts import BoundAccount
from providers_svc.domain.transactions import Transaction
from providers_svc.services.account_copies import AccountCopies
from providers_svc.services.accounts import payment_account, payment_accounts
from providers_svc.services.uow import UowFactory


@dataclass(frozen=True)
class Offer:
    """A provider a payment may be paid through, and the account behind it (None: the sandbox)."""

    name: str
    display_name: str
    account: BoundAccount | None = None
    # What the offer takes: the provider's currencies, narrowed by the account's.
    currencies: frozenset[str] = frozenset()

    @property
    def simulator(self) -> bool:
        return self.account is not None and self.account.simulator

    @property
    def livemode(self) -> bool:
        """Moves real money: a ``production`` account. payments-svc never offers a live payment anything
        else (its second lock, beside ours)."""
        return self.account is not None and not self.account.test


@dataclass(frozen=True)
class ProviderDirectory:
    registry: ProviderRegistry
    uow: UowFactory
    ring: KeyRing
    # Test tenants without an account of a simulated provider are served by its simulator.
    simulators: bool
    # The accounts transactions were started with (every Octo callback and Stripe page looks one up).
    copies: AccountCopies

    async def offers(self, tenant_id: str, currency: str | None, *, livemode: bool) -> list[Offer]:
        """Every provider the tenant's payment in ``currency`` (any when None) may be paid through."""
        offers = [
            Offer(p.name, p.display_name, currencies=p.currencies)
            for p in self.registry.for_currency(currency, livemode=livemode)
        ]
        providers = self.registry.account_providers()
        accounts = await payment_accounts(
            self.uow,
            self.ring,
            tenant_id,
            [p.name for p in providers],
            livemode=livemode,
            simulators=self.simulators,
        )
        for provider in providers:
            account = accounts.get(provider.name)
            if account is None:
                continue
            accepted = provider.currencies & account.currencies
            if currency is not None and currency not in accepted:
                continue
            shown = f"{provider.display_name} (simulator)" if account.simulator else provider.display_name
            offers.append(Offer(provider.name, shown, account, currencies=accepted))
        return sorted(offers, key=lambda o: o.name)

    async def for_start(self, tenant_id: str, name: str, currency: str, *, livemode: bool) -> Offer:
        """The offer a payment is started with, or the 422 that says why there is none."""
        plain = self.registry.get(name)
        if plain is not None:
            if livemode and plain.test_only:
                # API.md: the sandbox and the simulators never move a live payment, whatever the caller sends.
                raise ProblemError(422, "test_provider_in_livemode", f"Provider {name!r} takes test payments only")
            if currency not in plain.currencies:
                raise ProblemError(422, "currency_not_supported", f"Provider {name!r} does not accept {currency}")
            return Offer(plain.name, plain.display_name)
        provider = self.registry.account_provider(name)
        if provider is None:
            raise ProblemError(422, "unknown_provider", f"Provider {name!r} is not available")
        account = await payment_account(
            self.uow, self.ring, tenant_id, name, livemode=livemode, simulators=self.simulators
        )
        if account is None:
            raise ProblemError(422, "unknown_provider", f"Provider {name!r} is not set up for this tenant")
        if currency not in provider.currencies & account.currencies:
            raise ProblemError(422, "currency_not_supported", f"Provider {name!r} does not accept {currency}")
        return Offer(provider.name, provider.display_name, account)

    def adapter(self, offer: Offer) -> PaymentProvider:
        if offer.account is None:
            plain = self.registry.get(offer.name)
            assert plain is not None, "offers come from the registry"
            return plain
        provider = self.registry.account_provider(offer.name)
        assert provider is not None, "offers come from the registry"
        return provider.bind(offer.account)

    async def for_transaction(self, txn: Transaction) -> PaymentProvider | None:
        """The adapter of a started transaction: bound to the account it was started with. None: its
        provider is no longer enabled, or its account is gone."""
        if txn.account_id is None:
            return self.registry.get(txn.provider)
        provider = self.registry.account_provider(txn.provider)
        account = await self.copies.by_id(txn.provider, txn.account_id)
        if provider is None or account is None:
            return None
        return provider.bind(account)
