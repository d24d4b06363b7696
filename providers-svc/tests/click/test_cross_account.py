"""A Click cancel (error < 0) signed by another Click account, or by a test account for a live attempt,
releases nothing and files no anomaly on a payment that is not its own (found in review)."""

from __future__ import annotations

from typing import Any

from .conftest import ClickShop, add_click_account, signed_form


async def test_another_accounts_cancel_does_not_release_a_reservation(
    shop: ClickShop, internal_headers: Any, db_read: Any
) -> None:
    other = ClickShop(shop.client, internal_headers, "ten_clickother00001")
    creds = {"service_id": "555", "merchant_id": "1", "merchant_user_id": "2", "secret_key": "other-secret"}
    await add_click_account(shop.client, internal_headers, other.tenant, credentials=creds)
    pay = (await other.start())["payment_id"]
    prepared = await other.post(
        signed_form("0", secret="other-secret", service_id="555", merchant_trans_id=pay, click_trans_id="7001")
    )
    assert prepared["error"] == 0
    # The FIRST account (service 111, its own secret) speaks of the other account's attempt: a cancel.
    hostile = await shop.post(
        signed_form(
            "1",
            merchant_trans_id=pay,
            click_trans_id="7001",
            merchant_prepare_id=str(prepared["merchant_prepare_id"]),
            error="-5017",
            error_note="cancel",
        )
    )
    print("hostile answer", hostile)
    # The other account's real Complete must still be able to pay.
    done = await other.post(
        signed_form(
            "1",
            secret="other-secret",
            service_id="555",
            merchant_trans_id=pay,
            click_trans_id="7001",
            merchant_prepare_id=str(prepared["merchant_prepare_id"]),
        )
    )
    assert done["error"] == 0, done


async def test_another_accounts_cancel_of_a_paid_attempt_records_no_anomaly(
    shop: ClickShop, internal_headers: Any, db_read: Any
) -> None:
    other = ClickShop(shop.client, internal_headers, "ten_clickother00001")
    creds = {"service_id": "555", "merchant_id": "1", "merchant_user_id": "2", "secret_key": "other-secret"}
    await add_click_account(shop.client, internal_headers, other.tenant, credentials=creds)
    pay = (await other.start())["payment_id"]
    own = {"secret": "other-secret", "service_id": "555", "merchant_trans_id": pay, "click_trans_id": "7002"}
    prepared = await other.post(signed_form("0", **own))
    mpi = str(prepared["merchant_prepare_id"])
    assert (await other.post(signed_form("1", merchant_prepare_id=mpi, **own)))["error"] == 0
    await shop.post(signed_form("1", merchant_trans_id=pay, click_trans_id="7002", merchant_prepare_id=mpi, error="-1"))
    assert await db_read("anomalies") == []
