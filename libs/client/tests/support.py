"""What the client's tests share: the tenant they act as and the payer's side of the sandbox."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
from billing_client import AsyncBillingClient, AsyncPager, Page, Payment


@dataclass(frozen=True)
class Tenant:
    gateway_url: str
    checkout_url: str
    admin_token: str
    id: str
    app_name: str
    secret: str


async def pay_at_sandbox(tenant: Tenant, payment: Payment, outcome: str = "succeed") -> None:
    """The payer's browser: the hosted page's pay button, then the sandbox provider page's ``outcome``."""
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.post(f"{tenant.checkout_url}/c/{payment.checkout_token}/pay", data={"provider": "sandbox"})
        assert r.status_code == 303, r.text
        r = await http.post(r.headers["location"], data={"outcome": outcome})
        assert r.status_code == 303, r.text


async def wait_for_status(client: AsyncBillingClient, payment_id: str, wanted: str, timeout: float = 30) -> Payment:
    deadline = time.monotonic() + timeout
    while True:
        payment = await client.payments.retrieve(payment_id)
        if payment.status == wanted or time.monotonic() > deadline:
            return payment
        await asyncio.sleep(0.1)


async def first_page(pager: AsyncPager[Any]) -> Page[Any]:
    """One request of a list: its first page (the pager's generator closed at once)."""
    pages = pager.pages()
    try:
        return await anext(pages)
    finally:
        await pages.aclose()  # type: ignore[attr-defined]
