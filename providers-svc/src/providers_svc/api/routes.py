"""Routes of the ``api`` role."""

from __future__ import annotations

from aiohttp import web

from providers_svc.api import internal, octo_pages, reconciliation, refunds, stripe_pages, stripe_return
from providers_svc.api.accounts import add_account_routes
from providers_svc.api.callbacks import octo as octo_callbacks
from providers_svc.api.callbacks import payme as payme_callbacks
from providers_svc.api.callbacks import sandbox as sandbox_callbacks
from providers_svc.api.callbacks import stripe as stripe_callbacks
from providers_svc.api.callbacks.click import add_click_callback_routes
from providers_svc.api.stripe_objects import add_stripe_object_routes
from providers_svc.api.tenant_providers import add_tenant_provider_routes
from providers_svc.keys import (
    account_copies_key,
    http_client_key,
    octo_callbacks_key,
    settings_key,
    stripe_webhooks_key,
    uow_factory_key,
)
from providers_svc.sandbox import pages
from providers_svc.simulators import payme_pages
from providers_svc.simulators.click import add_click_simulator_routes
from providers_svc.simulators.octo_pages import octo_simulator_app


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/internal/providers", internal.list_providers)
    app.router.add_post("/internal/payments/start", internal.start_payment)
    app.router.add_post("/internal/payments/{payment_id}/cancel", internal.cancel_payment)
    app.router.add_post("/internal/payments/{payment_id}/transactions/{transaction_id}/void", internal.void_transaction)
    app.router.add_post("/internal/payments/{payment_id}/capture", internal.capture_payment)
    app.router.add_post("/internal/refunds/check", refunds.check)
    app.router.add_post(reconciliation.SYNC_REFUND, refunds.sync)
    app.router.add_post(reconciliation.SYNC_PAYMENT, reconciliation.sync_payment)
    app.router.add_get(reconciliation.STATEMENTS, reconciliation.statements)
    app.router.add_get(reconciliation.VERDICTS, reconciliation.verdicts)
    app.router.add_post("/billing/sandbox", sandbox_callbacks.sandbox_callback)
    # Payme answers a non-POST too (-32300, HTTP 200), so every method is routed.
    app.router.add_route("*", "/billing/payme", payme_callbacks.payme_callback)
    add_account_routes(app)
    add_stripe_object_routes(app)
    add_tenant_provider_routes(app)
    add_click_callback_routes(app)
    app.router.add_get("/sandbox/pay/{transaction_id}", pages.pay_page)
    app.router.add_post("/sandbox/pay/{transaction_id}", pages.pay_submit)
    app.router.add_get("/simulators/payme/pay/{transaction_id}", payme_pages.pay_page)
    app.router.add_post("/simulators/payme/pay/{transaction_id}", payme_pages.pay_submit)
    add_click_simulator_routes(app)
    if octo_callbacks_key in app:  # Octo is enabled
        add_octo_routes(app)
    if stripe_webhooks_key in app:  # Stripe is enabled
        app.router.add_post("/billing/stripe", stripe_callbacks.stripe_webhook)
        app.router.add_get("/pay/stripe/{transaction_id}/{token}", stripe_pages.pay_page)
        app.router.add_post("/pay/stripe/{transaction_id}/{token}", stripe_pages.pay_submit)
        app.router.add_get("/pay/stripe/{transaction_id}/{token}/return", stripe_return.return_page)


def add_octo_routes(app: web.Application) -> None:
    settings = app[settings_key]
    app.router.add_post("/billing/octo", octo_callbacks.octo_callback)
    app.router.add_get("/pay/octo/{transaction_id}", octo_pages.return_page)
    if settings.simulators:
        # The fake Octo and its payer page (API.md: test tenants without an Octo account).
        simulator = octo_simulator_app(
            app[uow_factory_key],
            app[account_copies_key],
            lambda: app[http_client_key],
            base_url=settings.octo_simulator_base,
            notify_url=settings.octo_notify_url,
        )
        app.add_subapp("/simulators/octo", simulator)
