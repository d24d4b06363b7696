"""Inputs that once ended in an HTTP 500 instead of a clear refusal (found in review): a NUL character in an
id, which PostgreSQL cannot store, and a sum too large to scale. Each is refused and changes nothing."""

from __future__ import annotations

import pytest

from .conftest import OctoShop, signed
from .test_octo_simulator import Gateway, gateway  # noqa: F401

pytestmark = pytest.mark.postgres


async def test_nul_in_shop_transaction_id_is_not_a_500(shop: OctoShop) -> None:
    # Unsigned, unauthenticated: the lookup of the transaction reaches PostgreSQL with a NUL byte.
    body = {"shop_transaction_id": "ptx_\u0000x", "octo_payment_UUID": "u", "status": "succeeded", "signature": "x"}
    resp = await shop.notify(body)
    assert resp.status == 400, (resp.status, await resp.text())


async def test_huge_total_sum_on_signed_callback_is_not_a_500(shop: OctoShop) -> None:
    # total_sum is not covered by the signature: a replayed genuine callback with it changed.
    started = await shop.start()
    ptx, uuid = started["provider_transaction_id"], started["provider_reference"]
    shop.octo.book.pay(uuid)
    resp = await shop.notify(signed(ptx, uuid, "succeeded", total_sum="1e999999999"))
    assert resp.status == 400, (resp.status, await resp.text())


@pytest.mark.parametrize(
    "path",
    [
        "/simulators/octo/pay/%00",
        "/sandbox/pay/ptx_%00",
        "/simulators/payme/pay/ptx_%00",
        "/simulators/click/pay/ptx_%00",
    ],
)
async def test_public_payer_pages_with_nul_are_not_500(gateway: Gateway, path: str) -> None:  # noqa: F811
    client = await gateway()
    resp = await client.get(path)
    assert resp.status < 500, (resp.status, await resp.text())
