"""Every typed application key of payments-svc."""

from __future__ import annotations

from aiohttp import web
from billing_runtime.plumbing import Plumbing

from payments_svc.services.checkout import CheckoutDeps
from payments_svc.services.lifecycle import LifecycleDeps
from payments_svc.settings import Settings

settings_key = web.AppKey("settings", Settings)
plumbing_key = web.AppKey("plumbing", Plumbing)
checkout_deps_key = web.AppKey("checkout_deps", CheckoutDeps)
lifecycle_deps_key = web.AppKey("lifecycle_deps", LifecycleDeps)
