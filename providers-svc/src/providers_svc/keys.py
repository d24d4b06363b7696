"""Every ``web.AppKey`` of the service in one place (everything is built in ``create_app``)."""

from __future__ import annotations

import aiohttp
import jinja2
from aiohttp import web
from billing_runtime.key_ring import KeyRing
from billing_runtime.plumbing import Plumbing

from providers_svc.adapters.base import ProviderRegistry
from providers_svc.metrics import ProvidersMetrics
from providers_svc.sandbox.bank import CallbackSender, SandboxBank
from providers_svc.services.account_copies import AccountCopies
from providers_svc.services.directory import ProviderDirectory
from providers_svc.services.octo import OctoCallbacks
from providers_svc.services.payme import PaymeMerchant
from providers_svc.services.payment_sync import PaymentSync
from providers_svc.services.refunds import Refunds
from providers_svc.services.statements.service import Statements
from providers_svc.services.stripe_webhooks import StripeWebhooks
from providers_svc.services.uow import UowFactory
from providers_svc.settings import Settings

settings_key = web.AppKey("settings", Settings)
metrics_key = web.AppKey("metrics", ProvidersMetrics)
plumbing_key = web.AppKey("plumbing", Plumbing)
uow_factory_key: web.AppKey[UowFactory] = web.AppKey("uow_factory")
registry_key = web.AppKey("registry", ProviderRegistry)
# The adapter of each tenant's payment at each provider (its account's, or the simulator's).
directory_key = web.AppKey("directory", ProviderDirectory)
# Opens and seals provider credentials (PROVIDERS_CREDENTIALS_KEYS).
key_ring_key = web.AppKey("key_ring", KeyRing)
# Each replica's copies of the provider accounts the callbacks look up (dropped on every change).
account_copies_key = web.AppKey("account_copies", AccountCopies)
bank_key = web.AppKey("sandbox_bank", SandboxBank)
callback_sender_key = web.AppKey("sandbox_callback_sender", CallbackSender)
templates_key = web.AppKey("templates", jinja2.Environment)
http_client_key = web.AppKey("http_client", aiohttp.ClientSession)
# Payme's Merchant API (``POST /billing/payme``), with its cache of opened Payme accounts.
payme_merchant_key = web.AppKey("payme_merchant", PaymeMerchant)
# Octo's notify callback use case (only when Octo is enabled).
octo_callbacks_key = web.AppKey("octo_callbacks", OctoCallbacks)
# Stripe's webhook use case, with the adapter provider and the event followers (only when Stripe is enabled).
stripe_webhooks_key = web.AppKey("stripe_webhooks", StripeWebhooks)
# The refund use cases (the worker's consumer and retrier, the internal refund routes).
refunds_key = web.AppKey("refunds", Refunds)
# Reconciliation's heal of a missed callback (POST /internal/payments/{payment_id}/sync).
payment_sync_key = web.AppKey("payment_sync", PaymentSync)
# Statements of a provider account (GET /internal/statements).
statements_key = web.AppKey("statements", Statements)
