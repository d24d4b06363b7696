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


def load_or_create(data_dir: Path) -> dict[str, str]:
    path = data_dir / "secrets.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
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
        # Owner-only from the first byte: the file holds every key of the installation.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(stored, f, indent=2)
    return stored
