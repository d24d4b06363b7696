"""The bodies we send to Octo (PROTOCOLS.md §3.1, §3.2): all POST JSON, each with the shop's id and
secret, so they are built here and never logged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Literal

from providers_svc.protocols.octo.amounts import to_major

PREPARE_PATH = "/prepare_payment"
SET_ACCEPT_PATH = "/set_accept"
REFUND_PATH = "/refund"
# Octo is in Tashkent and its `init_time` names no zone: we send Tashkent time (UTC+5 all year).
TASHKENT = timezone(timedelta(hours=5), "Asia/Tashkent")


@dataclass(frozen=True)
class ShopCredentials:
    shop_id: int
    secret: str

    def __repr__(self) -> str:  # never the secret, whatever logs a request object
        return f"ShopCredentials(shop_id={self.shop_id}, secret=***)"


@dataclass(frozen=True)
class PreparePayment:
    shop_transaction_id: str
    amount: int  # minor units
    currency: str
    description: str
    return_url: str
    notify_url: str
    auto_capture: bool
    test: bool
    init_time: datetime
    language: Literal["uz", "ru", "en"] = "ru"
    ttl_minutes: int | None = None


def _sum(value: Decimal) -> float | int:
    # JSON has no decimal type: Octo's examples send plain numbers. A whole sum goes as an integer, else
    # as the float whose repr is exactly the two-decimal value (float(Decimal("1500.10")) == 1500.1).
    return int(value) if value == value.to_integral_value() else float(value)


def prepare_body(shop: ShopCredentials, payment: PreparePayment) -> dict[str, Any]:
    """prepare_payment: ``auto_capture`` always explicit (the docs disagree on its default)."""
    body: dict[str, Any] = {
        "octo_shop_id": shop.shop_id,
        "octo_secret": shop.secret,
        "shop_transaction_id": payment.shop_transaction_id,
        "auto_capture": payment.auto_capture,
        "test": payment.test,
        "init_time": payment.init_time.astimezone(TASHKENT).strftime("%Y-%m-%d %H:%M:%S"),
        "total_sum": _sum(to_major(payment.amount, payment.currency)),
        "currency": payment.currency,
        "description": payment.description,
        "return_url": payment.return_url,
        "notify_url": payment.notify_url,
        "language": payment.language,
    }
    if payment.ttl_minutes is not None:
        body["ttl"] = payment.ttl_minutes
    return body


def status_body(shop: ShopCredentials, shop_transaction_id: str) -> dict[str, Any]:
    """The status call: prepare_payment with only these three fields (§3.1)."""
    return {"octo_shop_id": shop.shop_id, "octo_secret": shop.secret, "shop_transaction_id": shop_transaction_id}


def set_accept_body(
    shop: ShopCredentials,
    octo_payment_uuid: str,
    accept: Literal["capture", "cancel"],
    *,
    final_amount: int | None = None,
    currency: str = "UZS",
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "octo_shop_id": shop.shop_id,
        "octo_secret": shop.secret,
        "octo_payment_UUID": octo_payment_uuid,
        "accept_status": accept,
    }
    if final_amount is not None:
        body["final_amount"] = _sum(to_major(final_amount, currency))
    return body


def refund_body(
    shop: ShopCredentials, octo_payment_uuid: str, shop_refund_id: str, amount: int, currency: str
) -> dict[str, Any]:
    """``shop_refund_id`` is ours and unique: Octo drops a repeat of it, so a retried refund is one refund."""
    return {
        "octo_shop_id": shop.shop_id,
        "octo_secret": shop.secret,
        "octo_payment_UUID": octo_payment_uuid,
        "shop_refund_id": shop_refund_id,
        "amount": _sum(to_major(amount, currency)),
    }
