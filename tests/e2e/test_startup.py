"""Every service process, started as in production: it refuses to start on a missing, short or
published secret, naming the variable; and when it starts it logs its role, its listeners and what it
talks to, with no password or secret in it (issue 9 items 3 and 6)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from billing_runtime.testing import free_port
from cryptography.fernet import Fernet

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

BIN = Path(sys.executable).parent
DB_PASSWORD = "pw-that-must-never-be-logged"
BROKER_PASSWORD = "broker-pw-never-logged"
KEYS = {
    "payments": "startup-payments-key-0123456789abcdef",
    "providers": "startup-providers-key-0123456789abcdef",
    "webhooks": "startup-webhooks-key-0123456789abcdef",
    "reconciliation": "startup-reconciliation-key-0123456789abcdef",
    "jwt": "startup-jwt-key-0123456789abcdef0123",
    "sandbox": "startup-sandbox-key-0123456789abcdef",
    "admin": "startup-admin-token-0123456789abcdef",
    "fernet": Fernet.generate_key().decode(),
    "credentials": Fernet.generate_key().decode(),
    "sessions": Fernet.generate_key().decode(),
}
DATABASE = f"postgresql+asyncpg://postgres:{DB_PASSWORD}@127.0.0.1:5432/postgres"
BROKER = f"amqp://guest:{BROKER_PASSWORD}@127.0.0.1:5672/some-vhost"


def _port() -> str:
    return str(free_port())


def _env(service: str) -> dict[str, str]:
    """The environment of a production process of ``service``, every secret set."""
    return {
        "gateway": {
            "GATEWAY_PORT": _port(),
            "GATEWAY_OPS_PORT": _port(),
            "GATEWAY_DATABASE_URL": DATABASE,
            "GATEWAY_JWT_KEYS": "k1:" + KEYS["jwt"],
            "GATEWAY_PAYMENTS_INTERNAL_SECRET": KEYS["payments"],
            "GATEWAY_WEBHOOKS_INTERNAL_SECRET": KEYS["webhooks"],
            "GATEWAY_PROVIDERS_INTERNAL_SECRET": KEYS["providers"],
            "GATEWAY_ADMIN_TOKEN": KEYS["admin"],
        },
        "payments-svc": {
            "PAYMENTS_PORT": _port(),
            "PAYMENTS_DATABASE_URL": DATABASE,
            "PAYMENTS_BUS_URL": BROKER,
            "PAYMENTS_INTERNAL_SECRET": KEYS["payments"],
            "PAYMENTS_PROVIDERS_INTERNAL_SECRET": KEYS["providers"],
        },
        "providers-svc": {
            "PROVIDERS_PORT": _port(),
            "PROVIDERS_DATABASE_URL": DATABASE,
            "PROVIDERS_BUS_URL": BROKER,
            "PROVIDERS_INTERNAL_SECRET": KEYS["providers"],
            "PROVIDERS_SANDBOX_SECRET": KEYS["sandbox"],
            "PROVIDERS_CREDENTIALS_KEYS": KEYS["credentials"],
        },
        "webhook-dispatcher": {
            "WEBHOOKS_PORT": _port(),
            "WEBHOOKS_DATABASE_URL": DATABASE,
            "WEBHOOKS_BUS_URL": BROKER,
            "WEBHOOKS_INTERNAL_SECRET": KEYS["webhooks"],
            "WEBHOOKS_ENCRYPTION_KEY": KEYS["fernet"],
        },
        "reconciliation-svc": {
            "RECONCILIATION_PORT": _port(),
            "RECONCILIATION_DATABASE_URL": DATABASE,
            "RECONCILIATION_BUS_URL": BROKER,
            "RECONCILIATION_INTERNAL_SECRET": KEYS["reconciliation"],
            "RECONCILIATION_PROVIDERS_INTERNAL_SECRET": KEYS["providers"],
            "RECONCILIATION_PAYMENTS_INTERNAL_SECRET": KEYS["payments"],
        },
        "checkout-web": {
            "CHECKOUT_PORT": _port(),
            "CHECKOUT_DATABASE_URL": DATABASE,
            "CHECKOUT_SESSION_KEYS": KEYS["sessions"],
        },
    }[service]


def _clean_environ() -> dict[str, str]:
    prefixes = ("GATEWAY_", "PAYMENTS_", "PROVIDERS_", "WEBHOOKS_", "RECONCILIATION_", "CHECKOUT_", "BILLING_")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


COMMANDS = {
    "gateway": "api",
    "payments-svc": "api",
    "providers-svc": "api",
    "webhook-dispatcher": "api",
    "reconciliation-svc": "api",
    "checkout-web": "serve",
}
REQUIRED = {
    "gateway": [
        "GATEWAY_JWT_KEYS",
        "GATEWAY_PAYMENTS_INTERNAL_SECRET",
        "GATEWAY_WEBHOOKS_INTERNAL_SECRET",
        "GATEWAY_PROVIDERS_INTERNAL_SECRET",
    ],
    "payments-svc": ["PAYMENTS_INTERNAL_SECRET", "PAYMENTS_PROVIDERS_INTERNAL_SECRET"],
    "providers-svc": ["PROVIDERS_INTERNAL_SECRET", "PROVIDERS_SANDBOX_SECRET", "PROVIDERS_CREDENTIALS_KEYS"],
    "webhook-dispatcher": ["WEBHOOKS_INTERNAL_SECRET", "WEBHOOKS_ENCRYPTION_KEY"],
    "reconciliation-svc": [
        "RECONCILIATION_INTERNAL_SECRET",
        "RECONCILIATION_PROVIDERS_INTERNAL_SECRET",
        "RECONCILIATION_PAYMENTS_INTERNAL_SECRET",
    ],
    "checkout-web": ["CHECKOUT_SESSION_KEYS"],
}


class TestRefusesWeakSecrets:
    @pytest.mark.parametrize("service", sorted(REQUIRED))
    def test_missing_secrets_stop_the_process_naming_each_variable(self, service: str) -> None:
        env = {k: v for k, v in _env(service).items() if k not in REQUIRED[service]}
        done = subprocess.run(
            [str(BIN / service), COMMANDS[service]],
            env={**_clean_environ(), **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, done.stderr
        assert "refusing to start" in done.stderr
        for variable in REQUIRED[service]:
            assert variable in done.stderr
        assert "Traceback" not in done.stderr

    @pytest.mark.parametrize("service", sorted(REQUIRED))
    def test_a_short_or_published_secret_is_refused_and_not_echoed(self, service: str) -> None:
        variable = REQUIRED[service][-1]
        for weak in ("short-secret-value", "dev-internal-secret-change-me-0123456789"):
            value = f"k1:{weak}" if variable == "GATEWAY_JWT_KEYS" else weak
            done = subprocess.run(
                [str(BIN / service), COMMANDS[service]],
                env={**_clean_environ(), **_env(service), variable: value},
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 2, done.stderr
            assert variable in done.stderr
            assert weak not in done.stderr


class TestStartupLine:
    @pytest.mark.parametrize("service", sorted(COMMANDS))
    def test_logs_role_listeners_and_dependencies_without_secrets(self, service: str) -> None:
        env = _env(service)
        proc = subprocess.Popen(
            [str(BIN / service), COMMANDS[service]],
            env={**_clean_environ(), **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        output = []
        try:
            deadline = time.monotonic() + 30
            assert proc.stdout is not None
            while time.monotonic() < deadline:
                line = proc.stdout.readline()
                if not line:
                    break
                output.append(line)
                if " starting; listening on " in line:
                    break
        finally:
            proc.send_signal(signal.SIGTERM)
            rest, _ = proc.communicate(timeout=30)
            output.append(rest)
        text = "".join(output)
        line = next(line for line in output if " starting; listening on " in line)
        port = next(v for k, v in env.items() if k.endswith("_PORT") and "OPS" not in k)
        assert f"{service} {COMMANDS[service]} starting" in line
        assert f"127.0.0.1:{port}" in line
        assert "database postgresql postgres@127.0.0.1:5432/postgres" in line
        if service == "gateway":
            assert f"127.0.0.1:{env['GATEWAY_OPS_PORT']}" in line
        for secret in (DB_PASSWORD, BROKER_PASSWORD, *KEYS.values()):
            assert secret not in text
