"""What the fake Octo sends to the shop's notify_url (PROTOCOLS.md §3.4) and how it reads the answer:
signed by the account's formula with its key (``adapters.octo.signature_key_of``), as Octo would; for
``waiting_for_capture`` the answer's ``accept_status`` is the shop's decision.

Delivery is inline (the payer page waits for it), a few attempts a short while apart: enough for a
simulator whose receiver is our own endpoint. A callback still refused after them is dropped; the
payment stays as the payer left it, and its status call tells the truth to whoever asks."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import aiohttp

from providers_svc.protocols.octo.callbacks import Callback, SignatureFormula, expected_signature
from providers_svc.protocols.octo.requests import TASHKENT
from providers_svc.simulators.octo import OctoPayment

log = logging.getLogger(__name__)

ATTEMPTS = 3
RETRY_DELAY = 0.5


def notify_body(payment: OctoPayment, *, secret: str, formula: SignatureFormula, now: datetime) -> dict[str, Any]:
    hash_key = secrets.token_hex(16)
    signature = expected_signature(
        Callback(payment.shop_transaction_id, payment.uuid, payment.status, "", hash_key, None, {}),
        secret=secret,
        formula=formula,
    )
    total = float(payment.total_sum)
    return {
        "shop_transaction_id": payment.shop_transaction_id,
        "octo_payment_UUID": payment.uuid,
        "status": payment.status,
        "signature": signature,
        "hash_key": hash_key,
        "total_sum": total,
        "transfer_sum": total,
        "refunded_sum": float(sum(payment.refunds.values())),
        "card_country": "UZ",
        "maskedPan": "860002******0000",
        "rrn": str(secrets.randbelow(10**12)).zfill(12),
        "riskLevel": 0,
        "payed_time": now.astimezone(TASHKENT).strftime("%Y-%m-%d %H:%M:%S"),
        "card_type": "uzcard",
        "is_physical_card": True,
    }


@dataclass(frozen=True)
class Notifier:
    http: Callable[[], aiohttp.ClientSession]
    url: str

    async def send(self, body: dict[str, Any]) -> Literal["capture", "cancel"] | bool | None:
        """POST ``body``; the answer's decision (``capture``/``cancel``), None for a plain 200, False when
        no attempt got a 200."""
        for attempt in range(ATTEMPTS):
            if attempt:
                await asyncio.sleep(RETRY_DELAY * attempt)
            try:
                async with self.http().post(self.url, json=body) as response:
                    if response.status != 200:
                        log.warning("octo simulator: notify answered %s", response.status)
                        continue
                    answer = await response.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                log.warning("octo simulator: notify failed: %s", type(exc).__name__)
                continue
            accept = answer.get("accept_status") if isinstance(answer, dict) else None
            return accept if accept in ("capture", "cancel") else None
        return False
