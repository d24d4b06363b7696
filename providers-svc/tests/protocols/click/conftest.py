"""Helpers of the Click protocol tests: one merchant account, and signed forms as Click would post them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from providers_svc.protocols.click.credentials import ClickCredentials
from providers_svc.protocols.click.signing import SignedFields, sign

SECRET = "clicksecret"

FormBuilder = Callable[..., dict[str, str]]


@pytest.fixture
def credentials() -> ClickCredentials:
    return ClickCredentials(service_id=111, merchant_id=222, merchant_user_id=333, secret_key=SECRET)


@pytest.fixture
def click_form() -> FormBuilder:
    """``click_form(action, **fields)``: a form signed with SECRET over the final raw strings.

    A field given as None is left out; ``sign_string=...`` replaces the signature; ``secret=...`` signs
    with another key.
    """

    def build(action: str | None = "0", *, secret: str = SECRET, **fields: str | None) -> dict[str, str]:
        form: dict[str, str | None] = {
            "click_trans_id": "9001",
            "service_id": "111",
            "click_paydoc_id": "77001",
            "merchant_trans_id": "ord_1",
            "amount": "1000.00",
            "action": action,
            "error": "0",
            "error_note": "Success",
            "sign_time": "2026-01-01 10:00:00",
        }
        if action == "1":
            form["merchant_prepare_id"] = "5"
        form.update(fields)
        present = {k: v for k, v in form.items() if v is not None}
        if "sign_string" not in fields:
            present["sign_string"] = sign(
                SignedFields(
                    click_trans_id=present.get("click_trans_id", ""),
                    service_id=present.get("service_id", ""),
                    merchant_trans_id=present.get("merchant_trans_id", ""),
                    merchant_prepare_id=present.get("merchant_prepare_id") if action == "1" else None,
                    amount=present.get("amount", ""),
                    action=present.get("action", ""),
                    sign_time=present.get("sign_time", ""),
                ),
                secret,
            )
        return present

    return build
