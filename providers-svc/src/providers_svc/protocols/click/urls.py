"""The pay URL that sends the payer to Click (PROTOCOLS.md §1.9)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote, urlencode

from providers_svc.protocols.click.amounts import format_som
from providers_svc.protocols.click.credentials import ClickCredentials

PAY_URL = "https://my.click.uz/services/pay"


def pay_url(
    credentials: ClickCredentials,
    *,
    amount: int,
    transaction_param: str,
    return_url: str | None = None,
    with_merchant_user_id: bool = False,
    card_type: Literal["uzcard", "humo"] | None = None,
) -> str:
    """Click's pay page for ``amount`` tiyin; ``transaction_param`` comes back as ``merchant_trans_id``.

    Every value is percent-encoded with nothing left safe, so a ``return_url`` carrying its own query
    string or fragment cannot add or override parameters of ours.
    """
    if amount <= 0:
        raise ValueError("amount must be a positive number of tiyin")
    if not transaction_param:
        raise ValueError("transaction_param must not be empty")
    params: list[tuple[str, str]] = [
        ("service_id", str(credentials.service_id)),
        ("merchant_id", str(credentials.merchant_id)),
        ("amount", format_som(amount)),
        ("transaction_param", transaction_param),
    ]
    if return_url is not None:
        params.append(("return_url", return_url))
    if with_merchant_user_id:
        params.append(("merchant_user_id", str(credentials.merchant_user_id)))
    if card_type is not None:
        params.append(("card_type", card_type))
    return f"{PAY_URL}?{urlencode(params, quote_via=quote, safe='')}"
