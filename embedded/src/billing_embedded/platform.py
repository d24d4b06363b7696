"""The embedded platform: every service in one process, each on its own port with its own database on
the platform's PostgreSQL server (``billing_embedded.database``), sharing one in-process bus. Settings
come from each service's own environment variables first (so ports and URLs are overridable);
cross-references are then made consistent."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

import checkout_web
import payments_svc
import providers_svc
import reconciliation_svc
import webhook_dispatcher
from aiohttp import web
from billing_runtime.bus import MemoryBus
from billing_runtime.migrations import upgrade
from checkout_web.app import create_app as create_checkout
from checkout_web.settings import Settings as CheckoutSettings
from gateway.app import create_app as create_gateway
from gateway.ops import create_ops_app as create_gateway_ops
from gateway.settings import Settings as GatewaySettings
from payments_svc.app import create_app as create_payments
from payments_svc.settings import Settings as PaymentsSettings
from providers_svc.app import create_app as create_providers
from providers_svc.settings import Settings as ProvidersSettings
from reconciliation_svc.app import create_app as create_reconciliation
from reconciliation_svc.settings import Settings as ReconciliationSettings
from webhook_dispatcher.app import create_app as create_webhooks
from webhook_dispatcher.settings import Settings as WebhooksSettings

import gateway
from billing_embedded.database import DatabaseServer
from billing_embedded.demo_shop import DemoSettings, DemoShop
from billing_embedded.secrets_file import load_or_create

# Each service's database on the platform's server.
DATABASES = ("gateway", "payments", "providers", "webhooks", "reconciliation", "checkout")
# Connections each service keeps at most: five services share one server (max_connections 100).
POOL_SIZE = 10
# checkout-web's database holds only dashboard sessions and sign-in counters: a few connections.
CHECKOUT_POOL_SIZE = 3


def _root(package: object) -> Path:
    # src/<package>/__init__.py → the service folder holding alembic.ini and migrations/.
    return Path(package.__file__).resolve().parents[2]  # type: ignore[attr-defined]


@dataclass(frozen=True)
class EmbeddedConfig:
    gateway: GatewaySettings
    payments: PaymentsSettings
    providers: ProvidersSettings
    webhooks: WebhooksSettings
    checkout: CheckoutSettings
    reconciliation: ReconciliationSettings
    admin_token: str
    data_dir: Path
    database_socket: Path
    # The demo shop (billing_embedded.demo_shop), unless BILLING_DEMO=false.
    demo: DemoSettings | None = None

    @property
    def gateway_url(self) -> str:
        return f"http://{self.gateway.host}:{self.gateway.port}"

    @property
    def checkout_url(self) -> str:
        return f"http://{self.checkout.host}:{self.checkout.port}"


def build_config(data_dir: Path, server: DatabaseServer) -> EmbeddedConfig:
    """Every service's settings, its database on ``server`` (started or not: only its URLs are read)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    keys = load_or_create(data_dir)
    admin_token = os.environ.get("BILLING_ADMIN_TOKEN") or keys["admin_token"]
    internal = {
        name: keys[f"{name}_internal_secret"] for name in ("payments", "providers", "webhooks", "reconciliation")
    }

    checkout = CheckoutSettings(
        bus_url="memory://",
        database_url=server.url("checkout"),
        database_pool_size=CHECKOUT_POOL_SIZE,
        session_keys=os.environ.get("CHECKOUT_SESSION_KEYS") or keys["checkout_session_keys"],
    )
    gw = GatewaySettings(
        database_url=server.url("gateway"),
        database_pool_size=POOL_SIZE,
        payments_internal_secret=internal["payments"],
        webhooks_internal_secret=internal["webhooks"],
        providers_internal_secret=internal["providers"],
        reconciliation_internal_secret=internal["reconciliation"],
        admin_token=admin_token,
        jwt_keys=os.environ.get("GATEWAY_JWT_KEYS") or {"embedded": keys["jwt_key"]},
    )
    gateway_url = f"http://{gw.host}:{gw.port}"
    checkout = checkout.model_copy(update={"gateway_url": gateway_url})
    payments = PaymentsSettings(
        database_url=server.url("payments"),
        database_pool_size=POOL_SIZE,
        internal_secret=internal["payments"],
        providers_internal_secret=internal["providers"],
        reconciliation_internal_secret=keys["payments_reconciliation_secret"],
        bus_url="memory://",
    )
    providers = ProvidersSettings(
        database_url=server.url("providers"),
        database_pool_size=POOL_SIZE,
        internal_secret=internal["providers"],
        reconciliation_internal_secret=keys["providers_reconciliation_secret"],
        bus_url="memory://",
        sandbox_secret=os.environ.get("PROVIDERS_SANDBOX_SECRET") or keys["sandbox_secret"],
        credentials_keys=os.environ.get("PROVIDERS_CREDENTIALS_KEYS") or keys["providers_credentials_keys"],
    )
    payments = payments.model_copy(
        update={
            "providers_url": f"http://{providers.host}:{providers.port}",
            "checkout_base_url": os.environ.get("PAYMENTS_CHECKOUT_BASE_URL")
            or f"http://{checkout.host}:{checkout.port}",
        }
    )
    providers = providers.model_copy(
        update={"public_gateway_url": os.environ.get("PROVIDERS_PUBLIC_GATEWAY_URL") or gateway_url}
    )
    # The SSRF guard is on here as everywhere: loopback is refused unless WEBHOOKS_ALLOW_LOOPBACK=true
    # says otherwise, as ``make run`` does so that a newcomer's receiver on this machine works (the
    # banner says which). A single-node install started any other way keeps the other services on its
    # host out of a tenant's reach; every port of the platform itself is refused whatever it says.
    webhooks = WebhooksSettings(
        database_url=server.url("webhooks"),
        database_pool_size=POOL_SIZE,
        internal_secret=internal["webhooks"],
        bus_url="memory://",
        encryption_key=os.environ.get("WEBHOOKS_ENCRYPTION_KEY") or keys["webhooks_encryption_key"],
        allow_loopback=os.environ.get("WEBHOOKS_ALLOW_LOOPBACK", "false").lower() == "true",
        allow_http=True,
    )
    # Reconciliation calls providers-svc (the janitor's sync) and payments-svc (rebuild) with the keys
    # those two keep for it alone (never their own internal keys: it cannot sign as anyone else).
    reconciliation = ReconciliationSettings(
        database_url=server.url("reconciliation"),
        database_pool_size=POOL_SIZE,
        internal_secret=internal["reconciliation"],
        providers_internal_secret=keys["providers_reconciliation_secret"],
        payments_internal_secret=keys["payments_reconciliation_secret"],
        bus_url="memory://",
    )
    reconciliation = reconciliation.model_copy(
        update={
            "providers_url": f"http://{providers.host}:{providers.port}",
            "payments_url": f"http://{payments.host}:{payments.port}",
        }
    )
    gw = gw.model_copy(
        update={
            "payments_url": f"http://{payments.host}:{payments.port}",
            "providers_url": f"http://{providers.host}:{providers.port}",
            "webhooks_url": f"http://{webhooks.host}:{webhooks.port}",
            "reconciliation_url": f"http://{reconciliation.host}:{reconciliation.port}",
        }
    )
    # A tenant's site on an origin of its own (loopback only), so the SDK's modal is cross-origin.
    demo = None
    if os.environ.get("BILLING_DEMO", "true").lower() != "false":
        demo = DemoSettings(
            host="127.0.0.1",
            port=int(os.environ.get("BILLING_DEMO_PORT", "8070")),
            gateway_url=gateway_url,
            checkout_url=payments.checkout_base_url,
        )
    listeners = [(s.host, s.port) for s in (gw, checkout, payments, providers, webhooks, reconciliation)]
    if demo is not None:
        listeners.append((demo.host, demo.port))
    extra = os.environ.get("WEBHOOKS_PLATFORM_ADDRESSES", "")
    webhooks = webhooks.model_copy(
        update={
            "platform_addresses": ",".join([*(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in listeners), extra])
        }
    )
    return EmbeddedConfig(
        gw, payments, providers, webhooks, checkout, reconciliation, admin_token, data_dir, server.socket_dir, demo
    )


async def migrate(config: EmbeddedConfig) -> None:
    """Bring every service's database to the latest schema (idempotent; runs on every start)."""
    for package, url in (
        (gateway, config.gateway.database_url),
        (payments_svc, config.payments.database_url),
        (providers_svc, config.providers.database_url),
        (webhook_dispatcher, config.webhooks.database_url),
        (reconciliation_svc, config.reconciliation.database_url),
        (checkout_web, config.checkout.database_url),
    ):
        await asyncio.to_thread(upgrade, _root(package), url)


def build_apps(
    config: EmbeddedConfig, bus: MemoryBus, demo: DemoShop | None = None
) -> list[tuple[web.Application, str, int]]:
    """Public entry first: on shutdown it stops taking requests before the services behind it stop
    (the demo shop, a client of the gateway, before the gateway)."""
    gateway_app = create_gateway(config.gateway)
    ops = []
    if config.gateway.ops_port is not None:
        ops.append((create_gateway_ops(gateway_app), config.gateway.ops_host, config.gateway.ops_port))
    shop = [(demo.app, demo.settings.host, demo.settings.port)] if demo is not None else []
    return [
        *shop,
        (gateway_app, config.gateway.host, config.gateway.port),
        *ops,
        (create_checkout(config.checkout), config.checkout.host, config.checkout.port),
        (create_payments(config.payments, bus=bus), config.payments.host, config.payments.port),
        (create_providers(config.providers, bus=bus), config.providers.host, config.providers.port),
        (create_webhooks(config.webhooks, bus=bus), config.webhooks.host, config.webhooks.port),
        (
            create_reconciliation(config.reconciliation, bus=bus),
            config.reconciliation.host,
            config.reconciliation.port,
        ),
    ]


__all__ = ["EmbeddedConfig", "build_apps", "build_config", "checkout_web", "migrate"]
