"""Every typed application and request key of checkout-web, in one place."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from checkout_web.dashboard.api import TenantApi
from checkout_web.dashboard.sessions import Session, Sessions
from checkout_web.db.store import LoginCounter
from checkout_web.gateway_client import GatewayClient
from checkout_web.settings import Settings

settings_key = web.AppKey("settings", Settings)
gateway_key = web.AppKey("gateway", GatewayClient)
tenant_api_key = web.AppKey("tenant_api", TenantApi)
engine_key = web.AppKey("engine", AsyncEngine)
sessions_key = web.AppKey("sessions", Sessions)
login_counter_key = web.AppKey("login_counter", LoginCounter)
csp_nonce_key = web.RequestKey("csp_nonce", str)
# CSP frame-ancestors of this response: the payment's tenant's origins (checkout_web.embedding).
frame_ancestors_key = web.RequestKey("frame_ancestors", str)
# What the embedded page's script needs (status, where to poll, where to post), on a page in the modal.
embedded_page_key = web.RequestKey("embedded_page", dict)
session_key = web.RequestKey("session", Session)
