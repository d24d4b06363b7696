"""Every ``web.AppKey`` of the gateway, in one place."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web
from billing_runtime.health import Check
from billing_runtime.internal_auth import InternalSigner
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gateway.auth import TokenCodec
from gateway.metrics import GatewayMetrics
from gateway.ratelimit import RateLimiter
from gateway.settings import Settings
from gateway.tenant_access import TenantAccessCache
from gateway.tenant_secrets import SecretHasher
from gateway.token_throttle import TokenThrottle
from gateway.upstreams import Upstream

settings_key = web.AppKey("settings", Settings)
metrics_key = web.AppKey("metrics", GatewayMetrics)
sessionmaker_key: web.AppKey[async_sessionmaker[AsyncSession]] = web.AppKey("sessionmaker")
engine_key = web.AppKey("engine", AsyncEngine)
access_cache_key = web.AppKey("access_cache", TenantAccessCache)
token_codec_key = web.AppKey("token_codec", TokenCodec)
secret_hasher_key = web.AppKey("secret_hasher", SecretHasher)
rate_limiter_key = web.AppKey("rate_limiter", RateLimiter)
token_throttle_key = web.AppKey("token_throttle", TokenThrottle)
upstreams_key: web.AppKey[dict[str, Upstream]] = web.AppKey("upstreams")
internal_signer_key = web.AppKey("internal_signer", InternalSigner)
readiness_checks_key: web.AppKey[Mapping[str, Check]] = web.AppKey("readiness_checks")
