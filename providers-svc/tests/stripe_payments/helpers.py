"""Helpers of the Stripe webhook tests: events' objects as Stripe sends them, and what was stored."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from .conftest import StripeShop


def outbox_events(rows: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(row["body"]) for row in rows]


def payment_side(rows: list[Any]) -> list[dict[str, Any]]:
    """The outbox's events about payments and disputes: without the billing projections' own
    ``stripe.<object>.<action>`` events, which every projected object's event also publishes."""
    return [e for e in outbox_events(rows) if not e["event_type"].startswith("stripe.")]


async def transaction(db_read: Any, txn_id: str) -> Any:
    [txn] = [t for t in await db_read("transactions") if t["id"] == txn_id]
    return txn


async def intent_at_fake(shop: StripeShop, intent_id: str) -> dict[str, Any]:
    return await shop.localstripe.call("GET", f"/v1/payment_intents/{intent_id}", shop.secret_key)


def intent_object(started: dict[str, Any], status: str, **fields: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": started["provider_reference"],
        "object": "payment_intent",
        "status": status,
        "amount": 5000,
        "currency": "usd",
        "metadata": {"transaction_id": started["provider_transaction_id"]},
    }
    obj.update(fields)
    return obj


async def nothing_recorded(db_read: Any) -> None:
    assert await db_read("events") == []
    assert await db_read("outbox") == []


def dispute_object(intent_id: str | None, **fields: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": f"dp_{secrets.token_hex(6)}",
        "object": "dispute",
        "amount": 5000,
        "currency": "usd",
        "status": "needs_response",
        "reason": "fraudulent",
        "payment_intent": intent_id,
        "charge": None,
        "created": int(time.time()) - 100,
        "evidence_details": {"due_by": int(time.time()) + 86400},
        "balance_transactions": [],
    }
    obj.update(fields)
    return obj
