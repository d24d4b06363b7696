"""Every typed application and request key of checkout-web, in one place."""

from __future__ import annotations

from aiohttp import web

from checkout_web.gateway_client import GatewayClient
from checkout_web.settings import Settings

settings_key = web.AppKey("settings", Settings)
gateway_key = web.AppKey("gateway", GatewayClient)
csp_nonce_key = web.RequestKey("csp_nonce", str)
# CSP frame-ancestors of this response: the payment's tenant's origins (checkout_web.embedding).
frame_ancestors_key = web.RequestKey("frame_ancestors", str)
# What the embedded page's script needs (status, where to poll, where to post), on a page in the modal.
embedded_page_key = web.RequestKey("embedded_page", dict)
