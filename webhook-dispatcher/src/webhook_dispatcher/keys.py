"""Every typed application key of webhook-dispatcher."""

from __future__ import annotations

from aiohttp import web
from billing_runtime.plumbing import Plumbing

from webhook_dispatcher.services.deps import WebhookDeps
from webhook_dispatcher.services.dispatcher import Dispatcher
from webhook_dispatcher.settings import Settings

settings_key = web.AppKey("settings", Settings)
plumbing_key = web.AppKey("plumbing", Plumbing)
deps_key = web.AppKey("webhook_deps", WebhookDeps)
dispatcher_key = web.AppKey("dispatcher", Dispatcher)
