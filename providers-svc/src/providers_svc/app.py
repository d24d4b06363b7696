"""The composition root: ``create_app`` builds everything the service needs, nothing lives at module level."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import timedelta
from typing import Any

import aiohttp
from aiohttp import web
from billing_runtime.app import service_app
from billing_runtime.bus import Bus
from billing_runtime.key_ring import KeyRing
from billing_runtime.notifications import invalidated_on_notify
from billing_runtime.plumbing import Plumbing
from billing_runtime.status import add_status_route
from sqlalchemy.ext.asyncio import AsyncEngine

from providers_svc.adapters.base import AccountProvider, PaymentProvider, ProviderRegistry
from providers_svc.adapters.click import NAME as CLICK
from providers_svc.adapters.click import ClickProvider
from providers_svc.adapters.octo import NAME as OCTO
from providers_svc.adapters.octo import OctoProvider
from providers_svc.adapters.payme import NAME as PAYME
from providers_svc.adapters.payme import PaymeProvider
from providers_svc.adapters.sandbox import NAME as SANDBOX
from providers_svc.adapters.sandbox import SandboxProvider
from providers_svc.adapters.stripe import NAME as STRIPE
from providers_svc.adapters.stripe import StripeProvider
from providers_svc.api.callbacks.timing import callback_timing_middleware
from providers_svc.api.reconciliation import RECONCILIATION, STATEMENTS, SYNC_PAYMENT, SYNC_REFUND, VERDICTS
from providers_svc.api.routes import setup_routes
from providers_svc.db.models import heartbeats, outbox
from providers_svc.domain.stripe_events import StripeEventFollower
from providers_svc.events.consumers import REFUND_REQUEST_KEYS, REFUND_REQUESTS_QUEUE, refund_request_handler
from providers_svc.keys import (
    account_copies_key,
    bank_key,
    callback_sender_key,
    directory_key,
    http_client_key,
    key_ring_key,
    metrics_key,
    octo_callbacks_key,
    payme_merchant_key,
    payment_sync_key,
    plumbing_key,
    refunds_key,
    registry_key,
    settings_key,
    statements_key,
    stripe_webhooks_key,
    templates_key,
    uow_factory_key,
)
from providers_svc.metrics import ProvidersMetrics
from providers_svc.sandbox.bank import CallbackSender, SandboxBank
from providers_svc.sandbox.pages import new_templates
from providers_svc.services.account_copies import CHANNEL as ACCOUNTS_CHANNEL
from providers_svc.services.account_copies import AccountCopies
from providers_svc.services.directory import ProviderDirectory
from providers_svc.services.octo import OctoCallbacks
from providers_svc.services.payme import PaymeMerchant
from providers_svc.services.payme_accounts import PaymeAccounts
from providers_svc.services.payment_sync import PaymentSync
from providers_svc.services.refunds import Refunds
from providers_svc.services.statements.service import Statements
from providers_svc.services.stripe_projections import project_event
from providers_svc.services.stripe_webhooks import StripeWebhooks
from providers_svc.services.uow import ProvidersUnitOfWork, UowFactory
from providers_svc.settings import Settings
from providers_svc.status import status_source

ROLES = frozenset({"api", "worker"})


def build_registry(
    settings: Settings,
    bank: SandboxBank,
    extra: Iterable[AccountProvider] = (),
    *,
    http: Callable[[], aiohttp.ClientSession] | None = None,
    uow: UowFactory | None = None,
) -> ProviderRegistry:
    """The adapters named in ``settings.enabled_providers`` (an unknown name stops the start-up), and
    ``extra`` account providers given by the embedding code. ``http``: the app's outgoing HTTP session
    (open only while the app runs), for the adapters that call their provider. ``uow``: the database, for
    the adapters that read what their provider's calls stored (Payme); without it they are not built."""
    factories: dict[str, Callable[[], PaymentProvider]] = {
        SANDBOX: lambda: SandboxProvider(
            page_base=settings.payer_page_base, currencies=frozenset(settings.sandbox_currencies), bank=bank
        ),
    }
    # Providers paid through provider accounts (API.md "Provider accounts"): one adapter per account.
    account_factories: dict[str, Callable[[], AccountProvider]] = {
        CLICK: lambda: ClickProvider(settings.public_gateway_url, _required(http)),
        OCTO: lambda: OctoProvider(
            http=_required(http),
            notify_url=settings.octo_notify_url,
            simulator_base=settings.octo_simulator_base,
            return_base=settings.octo_return_base,
        ),
        STRIPE: lambda: StripeProvider(http=_required(http), page_base=settings.stripe_page_base),
    }
    if uow is not None:
        account_factories[PAYME] = lambda: PaymeProvider(uow, settings.public_gateway_url)
    providers: list[PaymentProvider] = []
    account_providers: list[AccountProvider] = list(extra)
    for name in settings.enabled_providers:
        if name in factories:
            providers.append(factories[name]())
        elif name in account_factories:
            account_providers.append(account_factories[name]())
        else:
            known = sorted([*factories, *account_factories])
            raise ValueError(f"unknown provider {name!r} in enabled_providers (known: {known})")
    return ProviderRegistry(providers, account_providers)


def _required(http: Callable[[], aiohttp.ClientSession] | None) -> Callable[[], aiohttp.ClientSession]:
    """The app's session, for adapters that call their provider (a registry built without one, as in
    unit tests, gets adapters whose calls fail loudly instead)."""

    def session() -> aiohttp.ClientSession:
        if http is None:
            raise RuntimeError("this registry was built without an HTTP session")
        return http()

    return session


async def _http_client(app: web.Application) -> AsyncIterator[None]:
    # One client session for outgoing calls (sandbox callbacks now, provider APIs later).
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=app[settings_key].provider_timeout)) as s:
        app[http_client_key] = s
        yield


def issuers_of(settings: Settings) -> dict[str, Any]:
    """Who may call: payments-svc (start, check, cancel payments, check refunds) and the gateway (the
    provider accounts' admin API), with providers-svc's own key; and, when its key is configured,
    reconciliation-svc with a key of its own, to sync payments and refunds, read statements and the
    verdicts (its rebuild), and nothing else (docs/INTERNAL.md "Trust")."""
    if settings.reconciliation_internal_secret is None:
        return {"internal_issuers": {"payments", "gateway"}}
    return {
        "internal_issuers": {"payments", "gateway", RECONCILIATION},
        "confined_issuers": {RECONCILIATION: {SYNC_PAYMENT, SYNC_REFUND, STATEMENTS, VERDICTS}},
        "issuer_secrets": {RECONCILIATION: settings.reconciliation_internal_secret.get_secret_value()},
    }


def create_app(
    settings: Settings,
    *,
    engine: AsyncEngine | None = None,
    bus: Bus | None = None,
    roles: Iterable[str] = ("api", "worker"),
    account_providers: Iterable[AccountProvider] = (),
    stripe_followers: Iterable[StripeEventFollower] = (),
) -> web.Application:
    """The providers-svc application.

    ``roles``: ``api`` serves the internal API, provider callbacks and the sandbox payer page;
    ``worker`` runs the outbox relay, the sandbox bank's callback sender, the consumer of refund requests
    (queue ``providers.refund-requests``) and the refund retrier. Both serve health routes.
    ``engine``/``bus`` may be shared (tests, the embedded runner); what is given is not closed here.
    ``account_providers``: more providers paid through accounts, beside the enabled ones (tests).
    ``stripe_followers``: more followers of Stripe's verified events, after the service's own (tests).
    """
    role_set = frozenset(roles)
    if not role_set or not role_set <= ROLES:
        raise ValueError(f"roles must be a non-empty subset of {sorted(ROLES)}, got {sorted(role_set)}")
    worker = "worker" in role_set

    metrics = ProvidersMetrics()
    plumbing = Plumbing(
        service="providers",
        database_url=settings.database_url,
        pool_size=settings.database_pool_size,
        metrics=metrics,
        bus_url=settings.bus_url,
        # The api role writes the outbox (through the unit of work) but only the worker relays it: an
        # api-only process NOTIFYs the workers after each commit that wrote events.
        outbox=outbox,
        run_relay=worker,
        poll_interval=settings.outbox_poll_interval,
        engine=engine,
        bus=bus,
        heartbeats=heartbeats,
        role="+".join(sorted(role_set)),
        heartbeat_interval=settings.heartbeat_interval,
    )
    checks = {"database": plumbing.check_database}
    if worker:
        checks["bus"] = plumbing.check_bus
    app = service_app(
        metrics,
        checks=checks,
        internal_secret=settings.internal_secret.get_secret_value(),
        internal_audience="providers",
        **issuers_of(settings),
        public_prefixes=("/billing/", "/sandbox/", "/simulators/", "/pay/"),
    )

    app.middlewares.append(callback_timing_middleware(metrics))

    def new_uow() -> ProvidersUnitOfWork:
        assert plumbing.sessionmaker is not None, "the database opens with the application"
        return ProvidersUnitOfWork(plumbing.sessionmaker, outbox, on_commit=plumbing.after_commit)

    sender = CallbackSender(
        new_uow,
        lambda: app[http_client_key],
        url=settings.sandbox_callback_url,
        secret=settings.sandbox_secret.get_secret_value(),
        retry_schedule=list(settings.sandbox_callback_retry_schedule),
        max_attempts=settings.sandbox_callback_max_attempts,
        timeout=settings.sandbox_callback_timeout,
        poll_interval=settings.sandbox_callback_poll_interval,
        metrics=metrics,
    )
    # The payer's decision is recorded where the page is served (the api role); the callback is sent
    # by the worker's sender: woken in-process, or through the outbox channel's NOTIFY.
    bank = SandboxBank(
        new_uow,
        pending_delay=settings.sandbox_pending_delay,
        authorization_seconds=settings.sandbox_authorization_seconds,
        on_decision=sender.wake if worker else plumbing.notify_workers,
    )

    app[settings_key] = settings
    app[metrics_key] = metrics
    app[plumbing_key] = plumbing
    app[uow_factory_key] = new_uow
    app[bank_key] = bank
    app[callback_sender_key] = sender
    registry = build_registry(settings, bank, account_providers, http=lambda: app[http_client_key], uow=new_uow)
    ring = KeyRing(settings.credentials_keys.get_secret_value())
    app[registry_key] = registry
    app[key_ring_key] = ring
    copies = AccountCopies(new_uow, ring, max_age=settings.account_cache_seconds)
    app[account_copies_key] = copies
    directory = ProviderDirectory(registry, new_uow, ring, simulators=settings.simulators, copies=copies)
    app[directory_key] = directory
    refunds = Refunds(new_uow, directory, lease=timedelta(seconds=settings.refund_lease_seconds))
    app[refunds_key] = refunds
    app[payment_sync_key] = PaymentSync(new_uow, directory)
    app[statements_key] = Statements(new_uow, ring, directory)
    app[templates_key] = new_templates()
    app[payme_merchant_key] = PaymeMerchant(new_uow, PaymeAccounts(new_uow, ring, copies))
    octo = registry.account_provider(OCTO)
    if isinstance(octo, OctoProvider):
        app[octo_callbacks_key] = OctoCallbacks(
            new_uow, ring, octo, copies, simulator_hold=timedelta(seconds=settings.sandbox_authorization_seconds)
        )
    stripe = registry.account_provider(STRIPE)
    if isinstance(stripe, StripeProvider):
        # stripe-python logs every request and Stripe's error messages at INFO (an authentication error
        # quotes part of the key): ours say what matters, without them.
        logging.getLogger("stripe").setLevel(logging.WARNING)
        # Every follower of Stripe's events runs in the webhook's unit of work, in this order, after the
        # payment outcome and disputes (services/stripe_webhooks.py): the billing projections first.
        followers: list[StripeEventFollower] = [project_event, *stripe_followers]
        app[stripe_webhooks_key] = StripeWebhooks(new_uow, copies, stripe, followers)

    # Order matters: cleanup runs in reverse, so background tasks stop before the HTTP client closes.
    app.cleanup_ctx.append(_http_client)
    app.cleanup_ctx.append(plumbing.ctx)
    if worker and SANDBOX in settings.enabled_providers:
        plumbing.add_task("sandbox-callbacks", sender.run, stop=sender.stop)
        plumbing.wake_on_notify(sender.wake)
    if worker:
        # payments-svc's refund requests (docs/INTERNAL.md "Refunds (issue 13)"), and the refunds whose
        # provider could not be reached, asked again.
        plumbing.add_consumer(REFUND_REQUESTS_QUEUE, REFUND_REQUEST_KEYS, refund_request_handler(refunds, metrics))
        plumbing.add_task(
            "refund-retries", lambda: refunds.run_retrier(settings.refund_retry_poll_interval, plumbing.runs)
        )
    if "api" in role_set:
        if settings.account_cache_seconds > 0:
            app.cleanup_ctx.append(invalidated_on_notify(settings.database_url, ACCOUNTS_CHANNEL, copies))
        setup_routes(app)
        add_status_route(app, status_source(settings, plumbing))
    return app
