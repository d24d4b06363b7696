"""The route table of webhook-dispatcher (paths exactly as API.md)."""

from __future__ import annotations

from aiohttp import web

from webhook_dispatcher.api import deliveries, endpoints


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/v1/webhook-endpoints", endpoints.create)
    r.add_get("/v1/webhook-endpoints", endpoints.list_)
    r.add_get("/v1/webhook-endpoints/{endpoint_id}", endpoints.get)
    r.add_patch("/v1/webhook-endpoints/{endpoint_id}", endpoints.update)
    r.add_delete("/v1/webhook-endpoints/{endpoint_id}", endpoints.delete)
    r.add_post("/v1/webhook-endpoints/{endpoint_id}/rotate-secret", endpoints.rotate_secret)
    r.add_post("/v1/webhook-endpoints/{endpoint_id}/test", endpoints.test)
    r.add_post("/v1/webhook-endpoints/{endpoint_id}/replay", endpoints.replay)
    r.add_get("/v1/webhook-deliveries", deliveries.list_)
    r.add_get("/v1/webhook-deliveries/{delivery_id}", deliveries.get)
    r.add_post("/v1/webhook-deliveries/{delivery_id}/retry", deliveries.retry)
