"""Internal API called by payments-svc (docs/INTERNAL.md). Every route needs a tenant in the token."""

from __future__ import annotations

from aiohttp import web
from billing_runtime.internal_auth import caller_key, require_tenant
from billing_runtime.problems import read_json_object

from providers_svc.api.schemas import CaptureRequest, ProvidersQuery, StartPaymentRequest, parse, transaction_json
from providers_svc.domain.transactions import capture_methods
from providers_svc.keys import directory_key, metrics_key, settings_key, uow_factory_key
from providers_svc.services import captures, transactions, voids
from providers_svc.services.transactions import StartPayment


async def list_providers(request: web.Request) -> web.Response:
    tenant_id = require_tenant(request)
    query = parse(ProvidersQuery, dict(request.query))
    offers = await request.app[directory_key].offers(tenant_id, query.currency, livemode=request[caller_key].livemode)
    return web.json_response(
        {
            "data": [
                {
                    "name": o.name,
                    "display_name": o.display_name,
                    "simulator": o.simulator,
                    "livemode": o.livemode,
                    "capture_methods": capture_methods(o.name),
                }
                for o in offers
            ]
        }
    )


async def start_payment(request: web.Request) -> web.Response:
    tenant_id = require_tenant(request)
    body = parse(StartPaymentRequest, await read_json_object(request))
    started = await transactions.start_payment(
        request.app[uow_factory_key],
        request.app[directory_key],
        StartPayment(
            tenant_id=tenant_id,
            payment_id=body.payment_id,
            provider=body.provider,
            amount=body.amount,
            currency=body.currency,
            order_id=body.order_id,
            description=body.description,
            return_url=str(body.return_url) if body.return_url is not None else None,
            expires_at=body.expires_at,
            livemode=request[caller_key].livemode,
            capture_method=body.capture_method,
        ),
        default_ttl=request.app[settings_key].default_transaction_ttl,
    )
    if started.created:
        request.app[metrics_key].transactions_started.labels(body.provider).inc()
    return web.json_response(transaction_json(started.transaction))


async def cancel_payment(request: web.Request) -> web.Response:
    tenant_id = require_tenant(request)
    await transactions.cancel_payment(
        request.app[uow_factory_key], request.app[directory_key], tenant_id, request.match_info["payment_id"]
    )
    return web.json_response({"cancelled": True})


async def void_transaction(request: web.Request) -> web.Response:
    """One attempt closed at its provider, for a payer who switches provider (services/voids.py)."""
    tenant_id = require_tenant(request)
    status = await voids.void_transaction(
        request.app[uow_factory_key],
        request.app[directory_key],
        tenant_id,
        request.match_info["payment_id"],
        request.match_info["transaction_id"],
    )
    return web.json_response({"voided": True, "status": status.value})


async def capture_payment(request: web.Request) -> web.Response:
    """Capture (all or part of) an authorized payment at its provider: 200 once the provider confirmed."""
    tenant_id = require_tenant(request)
    body = parse(CaptureRequest, await read_json_object(request))
    captured = await captures.capture_payment(
        request.app[uow_factory_key],
        request.app[directory_key],
        captures.Capture(tenant_id, request.match_info["payment_id"], body.provider, body.amount, body.currency),
    )
    return web.json_response({"amount_captured": captured.amount, "provider_reference": captured.provider_reference})
