"""The ops listener: ``/healthz``, ``/readyz`` and ``/metrics`` of a gateway on a port of their own
(``GATEWAY_OPS_HOST``:``GATEWAY_OPS_PORT``, loopback by default), open to whoever reaches it, for
probes and Prometheus inside the deployment. On the public listener the last two need the admin token.
"""

from __future__ import annotations

from aiohttp import web
from billing_runtime.health import add_health_routes

from gateway.keys import metrics_key, readiness_checks_key


def create_ops_app(gateway: web.Application) -> web.Application:
    """Serve it after ``gateway`` has started: its checks use the gateway's engine and upstreams."""
    ops = web.Application()
    add_health_routes(ops, gateway[metrics_key], gateway[readiness_checks_key])
    return ops
