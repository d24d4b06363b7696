"""Helpers of reconciliation-svc's tests: settings, tokens, event snapshots, the fake providers-svc."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from billing_contracts.envelope import EventBase
from billing_runtime.bus import Message
from billing_runtime.internal_auth import INTERNAL_HEADER, sign_internal
from reconciliation_svc.app import INTERNAL_AUDIENCE
from reconciliation_svc.settings import Settings

SERVICE_ROOT = Path(__file__).resolve().parents[1]
INTERNAL_SECRET = "test-recon-internal-secret-0123456789abcdef"
PROVIDERS_SECRET = "test-recon-providers-secret-0123456789abcdef"
PAYMENTS_SECRET = "test-recon-payments-secret-0123456789abcdef"
# Port 9 (discard) on loopback: nothing listens there, so a call the test did not point at a fake is
# refused at once and never leaves the machine.
NOBODY_LISTENS = "http://127.0.0.1:9"


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "internal_secret": INTERNAL_SECRET,
        "providers_internal_secret": PROVIDERS_SECRET,
        "payments_internal_secret": PAYMENTS_SECRET,
        "providers_url": NOBODY_LISTENS,
        "payments_url": NOBODY_LISTENS,
        "request_timeout": 5,
        # Tests run passes themselves (or shorten this); the worker's own loop stays out of their way.
        "janitor_interval": 3600,
        "metrics_interval": 3600,
        # The daily runs would be queued by the worker's loop as soon as a test's payments exist, beside
        # the runs a test queues itself: tests of the schedule turn it on (or call it) themselves.
        "schedule_enabled": False,
    }
    values.update(overrides)
    return Settings(**values)


def admin_headers(issuer: str = "gateway", secret: str = INTERNAL_SECRET) -> dict[str, str]:
    """What the gateway adds to an admin call it forwards (no tenant: a platform call)."""
    return {INTERNAL_HEADER: sign_internal(secret, issuer=issuer, audience=INTERNAL_AUDIENCE, tenant_id=None)}


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


def payment_snapshot(**overrides: Any) -> dict[str, Any]:
    payment: dict[str, Any] = {
        "id": "pay_1",
        "status": "CREATED",
        "amount": 5000,
        "currency": "USD",
        "order_id": "order-1",
        "sequence": 1,
        "created_at": NOW,
        "updated_at": NOW,
        "expires_at": NOW + timedelta(hours=1),
    }
    payment.update(overrides)
    return payment


def refund_snapshot(**overrides: Any) -> dict[str, Any]:
    refund: dict[str, Any] = {
        "id": "rfnd_1",
        "payment_id": "pay_1",
        "amount": 2000,
        "currency": "USD",
        "status": "PENDING",
        "provider": "stripe",
        "sequence": 1,
        "created_at": NOW,
        "updated_at": NOW,
    }
    refund.update(overrides)
    return refund


def as_message(event: EventBase) -> Message:
    return Message(
        routing_key=f"{event.source}.{event.event_type}.v1",
        body=event.model_dump_json().encode(),
        message_id=event.event_id,
    )


@dataclass
class FakeProviders:
    """providers-svc's sync endpoints (docs/INTERNAL.md "Reconciliation"), on loopback. ``answers`` maps
    an object id to a (status, body) answer (default: 200 pending, nothing published); every call is
    recorded with the caller the token names, after checking it as providers-svc would."""

    url: str = ""
    answers: dict[str, tuple[int, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    callers: list[str] = field(default_factory=list)
    # Awaited before each answer: what happens elsewhere while providers-svc is being asked.
    before_answer: Callable[[], Awaitable[None]] | None = None
