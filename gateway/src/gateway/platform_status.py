"""``GET /admin/status`` (admin token): the operators' one look at the platform's background machinery.
Each service's ``GET /internal/status`` (``billing_runtime.status``) is asked concurrently, signed as the
gateway's platform calls to that service are, each under ``status_timeout``; a service that does not
answer (down, too slow, refusing, not configured here) is shown ``{"reachable": false, "error"}`` and
the answer is still a 200: the status is for when things are wrong."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import ClientError, web
from billing_contracts.envelope import utcnow
from billing_runtime import tracing
from billing_runtime.internal_auth import INTERNAL_HEADER
from billing_runtime.keys import request_id_key
from billing_runtime.middlewares import REQUEST_ID_HEADER
from billing_runtime.status import STATUS_PATH

from gateway.admin import admin_only
from gateway.keys import internal_signer_key, settings_key, upstreams_key
from gateway.responses import PlatformStatus
from gateway.upstreams import PAYMENTS, PROVIDERS, RECONCILIATION, WEBHOOKS

SERVICES = (PAYMENTS, PROVIDERS, WEBHOOKS, RECONCILIATION)


async def platform_status(request: web.Request) -> web.Response:
    answers = await asyncio.gather(*(_service_status(request, name) for name in SERVICES))
    services = dict(zip(SERVICES, answers, strict=True))
    # Every service runs in the same mode; the gateway itself has no bus to tell it.
    modes = [answer["mode"] for answer in answers if answer.get("reachable") and "mode" in answer]
    body = PlatformStatus(generated_at=utcnow(), mode=modes[0] if modes else None, services=services)
    return web.json_response(body.model_dump(mode="json"), headers={"Cache-Control": "no-store"})


async def _service_status(request: web.Request, name: str) -> dict[str, Any]:
    app = request.app
    timeout = app[settings_key].status_timeout
    try:
        token = app[internal_signer_key].token(audience=name, tenant_id=None)
    except LookupError:
        # Reconciliation is optional on the gateway (GATEWAY_RECONCILIATION_INTERNAL_SECRET).
        return _unreachable("not configured on this gateway")
    headers = {INTERNAL_HEADER: token, REQUEST_ID_HEADER: request[request_id_key]}
    tracing.inject(headers)
    upstream = app[upstreams_key][name]
    try:
        async with (
            asyncio.timeout(timeout),
            upstream.session.get(upstream.url(STATUS_PATH), headers=headers, allow_redirects=False) as response,
        ):
            status, payload = response.status, await response.read()
    except TimeoutError:
        return _unreachable(f"no answer within {timeout:g} s")
    except ClientError as exc:
        # The exception's type only: its text names the upstream's address.
        return _unreachable(f"unreachable ({type(exc).__name__})")
    try:
        answer = json.loads(payload)
    except ValueError:
        answer = None
    if status != 200:
        code = answer.get("code") if isinstance(answer, dict) else None
        return _unreachable(f"answered {status}" + (f" {code}" if isinstance(code, str) else ""))
    if not isinstance(answer, dict):
        return _unreachable("answered something that is not a JSON object")
    return {"reachable": True, **answer}


def _unreachable(error: str) -> dict[str, Any]:
    return {"reachable": False, "error": error}


def add_status_routes(app: web.Application) -> None:
    app.router.add_get("/admin/status", admin_only(platform_status))
