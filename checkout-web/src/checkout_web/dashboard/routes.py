"""URL map of the dashboard (``/dashboard``)."""

from __future__ import annotations

from aiohttp import web

from checkout_web.assets import Asset, asset_handler
from checkout_web.dashboard import deliveries, overview, payments, sign_in, webhooks


def setup_dashboard_routes(app: web.Application, *, stylesheet: Asset, script: Asset, asset_max_age: int) -> None:
    r = app.router
    r.add_get("/dashboard", overview.home)
    r.add_get("/dashboard/", overview.home)
    r.add_get("/dashboard/sign-in", sign_in.sign_in_page, name="dashboard_sign_in")
    r.add_post("/dashboard/sign-in", sign_in.sign_in)
    r.add_post("/dashboard/sign-out", sign_in.sign_out)
    r.add_get("/dashboard/payments", payments.list_payments)
    r.add_get("/dashboard/payments/{payment_id}", payments.show_payment)
    r.add_post("/dashboard/payments/{payment_id}/refund", payments.refund)
    r.add_post("/dashboard/payments/{payment_id}/capture", payments.capture)
    r.add_post("/dashboard/payments/{payment_id}/cancel", payments.cancel)
    r.add_get("/dashboard/webhooks", webhooks.list_endpoints)
    r.add_post("/dashboard/webhooks", webhooks.create_endpoint)
    r.add_get("/dashboard/webhooks/{endpoint_id}", webhooks.show_endpoint)
    r.add_post("/dashboard/webhooks/{endpoint_id}", webhooks.update_endpoint)
    r.add_post("/dashboard/webhooks/{endpoint_id}/rotate-secret", webhooks.rotate_secret)
    r.add_post("/dashboard/webhooks/{endpoint_id}/test", webhooks.send_test)
    r.add_post("/dashboard/webhooks/{endpoint_id}/replay", webhooks.replay)
    r.add_get("/dashboard/deliveries", deliveries.list_deliveries)
    r.add_get("/dashboard/deliveries/{delivery_id}", deliveries.show_delivery)
    r.add_post("/dashboard/deliveries/{delivery_id}/retry", deliveries.retry)
    r.add_get("/dashboard/events", overview.events)
    r.add_get("/dashboard/providers", overview.providers)
    r.add_get("/dashboard/docs", overview.docs)
    r.add_get("/dashboard/static/dashboard.css", asset_handler(stylesheet, asset_max_age), name="dashboard_css")
    r.add_get("/dashboard/static/dashboard.js", asset_handler(script, asset_max_age), name="dashboard_js")
