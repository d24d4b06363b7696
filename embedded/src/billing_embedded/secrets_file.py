"""Secrets of an embedded installation, generated on first start and kept in the data directory so a
restart keeps issued JWTs, checkout links and the admin token valid."""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path

# One internal key per service that receives internal calls (billing_runtime.internal_auth).
INTERNAL_KEYS = (
    "payments_internal_secret",
    "providers_internal_secret",
    "webhooks_internal_secret",
    "reconciliation_internal_secret",
    # reconciliation-svc's own keys towards payments-svc and providers-svc (a key per issuer there).
    "payments_reconciliation_secret",
    "providers_reconciliation_secret",
)
_NAMES = ("admin_token", "jwt_key", "sandbox_secret", *INTERNAL_KEYS)
# Encrypt webhook signing secrets, provider credentials and dashboard sessions' access tokens at rest;
# Fernet wants url-safe base64 of exactly 32 bytes.
_FERNET_KEYS = ("webhooks_encryption_key", "providers_credentials_keys", "checkout_session_keys")


def _read(data_dir: Path) -> dict[str, str]:
    path = data_dir / "secrets.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    return stored


def _write(data_dir: Path, stored: dict[str, str]) -> None:
    # Owner-only from the first byte: the file holds every key of the installation.
    fd = os.open(data_dir / "secrets.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(stored, f, indent=2)


def load_or_create(data_dir: Path) -> dict[str, str]:
    stored = _read(data_dir)
    changed = False
    for name in _NAMES:
        if not stored.get(name):
            stored[name] = secrets.token_urlsafe(32)
            changed = True
    for name in _FERNET_KEYS:
        if not stored.get(name):
            stored[name] = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
            changed = True
    if changed:
        _write(data_dir, stored)
    return stored


# The demo shop's tenant (billing_embedded.demo_tenant): its id, app name and secret, kept beside the
# installation's keys so that every start reuses it.
DEMO_TENANT_KEYS = ("demo_tenant_id", "demo_app_name", "demo_secret")


def load_demo_tenant(data_dir: Path) -> dict[str, str] | None:
    stored = _read(data_dir)
    if not all(stored.get(name) for name in DEMO_TENANT_KEYS):
        return None
    return {name: stored[name] for name in DEMO_TENANT_KEYS}


def save_demo_tenant(data_dir: Path, tenant: dict[str, str]) -> None:
    stored = _read(data_dir)
    stored.update({name: tenant[name] for name in DEMO_TENANT_KEYS})
    _write(data_dir, stored)
