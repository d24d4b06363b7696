"""Every typed application and request key of checkout-web, in one place."""

from __future__ import annotations

from aiohttp import web

from checkout_web.gateway_client import GatewayClient
from checkout_web.settings import Settings

settings_key = web.AppKey("settings", Settings)
gateway_key = web.AppKey("gateway", GatewayClient)
csp_nonce_key = web.RequestKey("csp_nonce", str)
