"""The route table of payments-svc."""

from __future__ import annotations

from aiohttp import web

from payments_svc.api import attempts, checkout, events, internal_events, payments, refunds

# The one route reconciliation-svc may call (app.py confines its tokens to it).
INTERNAL_EVENTS = "/internal/events"


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/v1/payments", payments.create)
    r.add_get("/v1/payments", payments.list_)
    r.add_get("/v1/payments/{payment_id}", payments.get)
    r.add_post("/v1/payments/{payment_id}/cancel", payments.cancel)
    r.add_post("/v1/payments/{payment_id}/capture", payments.capture)
    r.add_get("/v1/payments/{payment_id}/history", payments.history)
    r.add_get("/v1/payments/{payment_id}/attempts", attempts.list_)
    r.add_post("/v1/payments/{payment_id}/refunds", refunds.create)
    r.add_get("/v1/payments/{payment_id}/refunds", refunds.list_)
    r.add_get("/v1/refunds/{refund_id}", refunds.get)
    r.add_get("/v1/events", events.events)
    r.add_get(INTERNAL_EVENTS, internal_events.platform_events)
    r.add_get("/v1/checkout/{token}", checkout.view)
    r.add_post("/v1/checkout/{token}/pay", checkout.pay_)
