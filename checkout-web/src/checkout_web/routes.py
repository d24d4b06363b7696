"""URL map of checkout-web (the polls ``setup_routes``)."""

from __future__ import annotations

from aiohttp import web

from checkout_web import views
from checkout_web.assets import Asset, asset_handler


def setup_routes(
    app: web.Application, *, sdk: Asset, stylesheet: Asset, embedded_script: Asset, asset_max_age: int
) -> None:
    router = app.router
    router.add_get("/c/{token}", views.checkout_page, name="checkout")
    pay = router.add_resource("/c/{token}/pay", name="pay")
    pay.add_route("POST", views.pay)
    pay.add_route("GET", views.pay_again)
    router.add_get("/c/{token}/return", views.return_page, name="return_page")
    router.add_get("/c/{token}/status.json", views.status_json, name="status")
    router.add_get("/checkout.js", asset_handler(sdk, asset_max_age), name="sdk")
    router.add_get("/static/checkout.css", asset_handler(stylesheet, asset_max_age), name="stylesheet")
    # The script of a page in the SDK's modal (checkout_web.embedding): a file, so the CSP needs no more
    # than the page's nonce.
    router.add_get("/static/embedded.js", asset_handler(embedded_script, asset_max_age), name="embedded_script")
